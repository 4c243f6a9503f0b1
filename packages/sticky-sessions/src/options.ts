import {
  DEFAULT_COOKIE_HTTP_ONLY,
  DEFAULT_COOKIE_MAX_AGE,
  DEFAULT_COOKIE_NAME,
  DEFAULT_COOKIE_PATH,
  DEFAULT_COOKIE_SAMESITE,
  DEFAULT_COOKIE_SECURE,
  DEFAULT_FALLBACK_MODE,
  DEFAULT_LISTEN_PORT,
  DEFAULT_REPLAY_CACHE,
  DEFAULT_REPLAY_STATUS,
  DEFAULT_REPLAY_TIMEOUT
} from '@navigator/config'
import type { MaintenanceResponder, UpstreamProxy } from '@navigator/proxy'
import {
  APP_PATTERN,
  isValidMachineId,
  parseDuration,
  REGION_PATTERN,
  type FallbackMode,
  type SameSite,
  type StickySessionsConfig
} from '@navigator/fly-replay'
import type { MachineDiscovery } from './discovery.js'
import { InvalidStickyOptionError } from './errors.js'

// The defaults the YAML keys have are those of @navigator/config, re-exported; these three are the plugin's own.
export {
  DEFAULT_COOKIE_HTTP_ONLY,
  DEFAULT_COOKIE_MAX_AGE,
  DEFAULT_COOKIE_NAME,
  DEFAULT_COOKIE_PATH,
  DEFAULT_COOKIE_SECURE,
  DEFAULT_FALLBACK_MODE,
  DEFAULT_REPLAY_CACHE,
  DEFAULT_REPLAY_STATUS,
  DEFAULT_REPLAY_TIMEOUT
}
export const DEFAULT_COOKIE_SAME_SITE: SameSite = DEFAULT_COOKIE_SAMESITE
export const DEFAULT_PORT = DEFAULT_LISTEN_PORT
/** Registering the plugin opts in (the YAML key defaults to false). */
export const DEFAULT_ENABLED = true
export const DEFAULT_PATHS: readonly string[] = Object.freeze([])
/** The `state` our replays carry: a replayed request that comes back with it is never replayed again. */
export const STICKY_REPLAY_STATE = 'nav-sticky'

export type DiscoveryOption = 'dns' | 'static' | 'none' | MachineDiscovery

export interface StickySessionsOptions {
  /** Registering the plugin opts in, so this defaults to true (the YAML key defaults to false). */
  enabled?: boolean
  cookieName?: string
  /** Milliseconds, or a Go duration such as "24h". */
  cookieMaxAge?: number | string
  cookieSecure?: boolean
  cookieHttpOnly?: boolean
  /** Strict, Lax or None, in any case. None requires cookieSecure. */
  cookieSameSite?: string
  cookiePath?: string
  /** Sticky path patterns; empty = every path. */
  paths?: readonly string[]
  fallbackMode?: FallbackMode
  /** Signs the cookie; with a list, the first signs and all verify. */
  secret?: string | readonly string[]
  /** How long Fly may try the target before handing the request back; milliseconds or a Go duration. */
  replayTimeout?: number | string
  /** true: replays carry only instance=T so Fly's session replay cache can keep them. */
  replayCache?: boolean
  replayStatus?: number
  /** { machineId: "http://host:port" }: static discovery and direct-proxy addresses. */
  peers?: Readonly<Record<string, string>>
  /** Default: FLY_MACHINE_ID. Without one the plugin does nothing. */
  machineId?: string
  /** Default: FLY_APP_NAME. */
  appName?: string
  /** Default: FLY_REGION. */
  region?: string
  /** Port peers listen on, for `http://<id>.vm.<app>.internal:<port>`. */
  port?: number
  /** Default: "static" with peers, "dns" on Fly (app name known), else "none". */
  discovery?: DiscoveryOption
  /** The upstream proxy for the direct path; one is created (and closed with the app) when omitted. */
  proxy?: UpstreamProxy
  /** Answers when the cookie's Machine is unavailable and fallbackMode is "maintenance"; see createMaintenanceResponder. */
  maintenance?: MaintenanceResponder
}

export interface ResolvedOptions {
  enabled: boolean
  cookieName: string
  cookieMaxAgeSeconds: number
  cookieSecure: boolean
  cookieHttpOnly: boolean
  cookieSameSite: SameSite
  cookiePath: string
  paths: readonly string[]
  fallbackMode: FallbackMode
  secrets: readonly string[]
  replayTimeoutMs: number
  replayCache: boolean
  replayStatus: number
  peers: ReadonlyMap<string, string>
  machineId: string | null
  appName: string | null
  region: string | null
  port: number
  discovery: DiscoveryOption
  proxy: UpstreamProxy | null
  maintenance: MaintenanceResponder | null
}

// RFC 6265 cookie-name (an RFC 7230 token).
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/
const COOKIE_PATH = /^\/[\x21-\x3a\x3c-\x7e]*$/
const SAME_SITE: Record<string, SameSite> = { strict: 'Strict', lax: 'Lax', none: 'None' }

function fail (name: string, message: string): never {
  throw new InvalidStickyOptionError(name, message)
}

function bool (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(name, 'must be true or false')
  return value
}

function durationMs (name: string, value: unknown, fallback: string): number {
  const given = value ?? fallback
  if (typeof given === 'number') {
    if (!Number.isFinite(given) || given <= 0) fail(name, 'must be a positive number of milliseconds')
    return given
  }
  if (typeof given !== 'string') fail(name, 'must be milliseconds or a Go duration such as "24h"')
  let ms: number
  try {
    ms = parseDuration(given)
  } catch (err) {
    fail(name, (err as Error).message)
  }
  if (ms <= 0) fail(name, 'must be longer than zero')
  return ms
}

function identity (name: string, value: unknown, valid: (text: string) => boolean): string | null {
  if (value === undefined || value === '') return null
  if (typeof value !== 'string' || !valid(value)) fail(name, `${JSON.stringify(value)} is not valid`)
  return value
}

function originOf (machineId: string, url: unknown): string {
  if (typeof url !== 'string') fail(`peers.${machineId}`, 'must be a URL such as http://10.0.0.2:3000')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    fail(`peers.${machineId}`, `${JSON.stringify(url)} is not a URL`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') fail(`peers.${machineId}`, 'must be an http or https URL')
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '') {
    fail(`peers.${machineId}`, 'must be an origin only (scheme, host and port)')
  }
  return parsed.origin
}

/** Validates the options and applies defaults; throws NAV_STICKY_SESSIONS_INVALID_OPTION naming the option. */
export function resolveOptions (options: StickySessionsOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedOptions {
  if (options === null || typeof options !== 'object') fail('options', 'must be an object')
  const cookieName = options.cookieName ?? DEFAULT_COOKIE_NAME
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) fail('cookieName', `${JSON.stringify(cookieName)} is not a cookie name`)
  const cookieMaxAgeSeconds = Math.floor(durationMs('cookieMaxAge', options.cookieMaxAge, DEFAULT_COOKIE_MAX_AGE) / 1000)
  if (cookieMaxAgeSeconds < 1) fail('cookieMaxAge', 'must be at least one second')
  const cookieSecure = bool('cookieSecure', options.cookieSecure, DEFAULT_COOKIE_SECURE)
  const sameSiteText = options.cookieSameSite ?? DEFAULT_COOKIE_SAME_SITE
  const cookieSameSite = typeof sameSiteText === 'string' ? SAME_SITE[sameSiteText.toLowerCase()] : undefined
  if (cookieSameSite === undefined) fail('cookieSameSite', `${JSON.stringify(sameSiteText)} is not Strict, Lax or None`)
  if (cookieSameSite === 'None' && !cookieSecure) fail('cookieSameSite', 'None requires cookieSecure: true (browsers drop such cookies)')
  const cookiePath = options.cookiePath ?? DEFAULT_COOKIE_PATH
  if (typeof cookiePath !== 'string' || !COOKIE_PATH.test(cookiePath)) fail('cookiePath', `${JSON.stringify(cookiePath)} is not a cookie path`)

  const fallbackMode = options.fallbackMode ?? DEFAULT_FALLBACK_MODE
  if (fallbackMode !== 'maintenance' && fallbackMode !== 'route_to_available') {
    fail('fallbackMode', `${JSON.stringify(fallbackMode)} is not "maintenance" or "route_to_available"`)
  }
  const secretList = options.secret === undefined ? [] : typeof options.secret === 'string' ? [options.secret] : options.secret
  if (!Array.isArray(secretList) || !secretList.every((s) => typeof s === 'string' && s !== '')) {
    fail('secret', 'must be a non-empty string or a list of them')
  }
  const replayStatus = options.replayStatus ?? DEFAULT_REPLAY_STATUS
  if (!Number.isInteger(replayStatus) || replayStatus < 200 || replayStatus > 599) fail('replayStatus', `${String(replayStatus)} is not an HTTP status`)

  const peers = new Map<string, string>()
  if (options.peers !== undefined) {
    if (options.peers === null || typeof options.peers !== 'object') fail('peers', 'must be an object { machineId: url }')
    for (const [id, url] of Object.entries(options.peers)) {
      if (!isValidMachineId(id)) fail('peers', `${JSON.stringify(id)} is not a Machine ID`)
      peers.set(id, originOf(id, url))
    }
  }
  const port = options.port ?? DEFAULT_PORT
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail('port', `${String(port)} is not a TCP port`)

  const discovery = options.discovery
  if (discovery !== undefined && discovery !== 'dns' && discovery !== 'static' && discovery !== 'none' &&
      (discovery === null || typeof discovery !== 'object' || typeof discovery.has !== 'function')) {
    fail('discovery', 'must be "dns", "static", "none" or an object with has(machineId)')
  }
  if (discovery === 'static' && peers.size === 0) fail('discovery', '"static" needs peers')
  const appName = identity('appName', options.appName ?? env.FLY_APP_NAME, (text) => APP_PATTERN.test(text))
  if (discovery === 'dns' && appName === null) fail('discovery', '"dns" needs appName (or FLY_APP_NAME)')
  if (options.proxy !== undefined && (options.proxy === null || typeof options.proxy.forward !== 'function')) {
    fail('proxy', 'must be an UpstreamProxy from @navigator/proxy')
  }
  if (options.maintenance !== undefined && typeof options.maintenance !== 'function') fail('maintenance', 'must be a function (ctx), made by createMaintenanceResponder of @navigator/proxy')

  return {
    enabled: bool('enabled', options.enabled, DEFAULT_ENABLED),
    cookieName,
    cookieMaxAgeSeconds,
    cookieSecure,
    cookieHttpOnly: bool('cookieHttpOnly', options.cookieHttpOnly, DEFAULT_COOKIE_HTTP_ONLY),
    cookieSameSite,
    cookiePath,
    paths: options.paths ?? DEFAULT_PATHS,
    fallbackMode,
    secrets: [...secretList],
    replayTimeoutMs: durationMs('replayTimeout', options.replayTimeout, DEFAULT_REPLAY_TIMEOUT),
    replayCache: bool('replayCache', options.replayCache, DEFAULT_REPLAY_CACHE),
    replayStatus,
    peers,
    machineId: identity('machineId', options.machineId ?? env.FLY_MACHINE_ID, isValidMachineId),
    appName,
    region: identity('region', options.region ?? env.FLY_REGION, (text) => REGION_PATTERN.test(text)),
    port,
    discovery: discovery ?? (peers.size > 0 ? 'static' : appName !== null ? 'dns' : 'none'),
    proxy: options.proxy ?? null,
    maintenance: options.maintenance ?? null
  }
}

/** The plugin options for the normalised `routes.fly.sticky_sessions` section of a Navigator config. */
export function optionsFromConfig (config: StickySessionsConfig): StickySessionsOptions {
  return {
    enabled: config.enabled,
    cookieName: config.cookieName,
    cookieMaxAge: config.cookieMaxAgeMs,
    cookieSecure: config.cookieSecure,
    cookieHttpOnly: config.cookieHttpOnly,
    cookieSameSite: config.cookieSameSite,
    cookiePath: config.cookiePath,
    paths: config.paths,
    fallbackMode: config.fallbackMode,
    secret: config.secrets.length === 0 ? undefined : config.secrets,
    replayTimeout: config.replayTimeoutMs,
    replayCache: config.replayCache,
    peers: config.peers
  }
}
