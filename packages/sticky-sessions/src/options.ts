import {
  cookieDomainProblem,
  DEFAULT_COOKIE_HTTP_ONLY,
  DEFAULT_COOKIE_MAX_AGE,
  DEFAULT_COOKIE_NAME,
  DEFAULT_COOKIE_PARTITIONED,
  DEFAULT_COOKIE_PATH,
  DEFAULT_COOKIE_SAMESITE,
  DEFAULT_COOKIE_SECURE,
  DEFAULT_DIRECT_PROXY,
  DEFAULT_FALLBACK_MODE,
  DEFAULT_LISTEN_PORT,
  DEFAULT_MAX_REPLAY_BODY,
  DEFAULT_REPLAY_CACHE,
  DEFAULT_REPLAY_STATUS,
  DEFAULT_REPLAY_TIMEOUT,
  DEFAULT_STICKY_DEBUG_HEADER,
  stickyHeaderProblem
} from '@navigator/config'
import type { MaintenanceResponder, RequestContext, UpstreamProxy } from '@navigator/proxy'
import {
  APP_PATTERN,
  isValidMachineId,
  parseDuration,
  REGION_PATTERN,
  type DirectProxyMode,
  type FallbackMode,
  type SameSite,
  type StickySessionsConfig
} from '@navigator/fly-replay'
import type { CookieRejection } from './cookie.js'
import type { MachineDiscovery } from './discovery.js'
import { InvalidStickyOptionError } from './errors.js'

// The defaults the YAML keys have are those of @navigator/config, re-exported; these three are the plugin's own.
export {
  DEFAULT_COOKIE_HTTP_ONLY,
  DEFAULT_COOKIE_MAX_AGE,
  DEFAULT_COOKIE_NAME,
  DEFAULT_COOKIE_PARTITIONED,
  DEFAULT_COOKIE_PATH,
  DEFAULT_COOKIE_SECURE,
  DEFAULT_FALLBACK_MODE,
  DEFAULT_MAX_REPLAY_BODY,
  DEFAULT_REPLAY_CACHE,
  DEFAULT_REPLAY_STATUS,
  DEFAULT_REPLAY_TIMEOUT,
  DEFAULT_STICKY_DEBUG_HEADER
}
export const DEFAULT_COOKIE_SAME_SITE: SameSite = DEFAULT_COOKIE_SAMESITE
export const DEFAULT_DIRECT_PROXY_MODE: DirectProxyMode = DEFAULT_DIRECT_PROXY
export const DEFAULT_PORT = DEFAULT_LISTEN_PORT
/** Registering the plugin opts in (the YAML key defaults to false). */
export const DEFAULT_ENABLED = true
export const DEFAULT_PATHS: readonly string[] = Object.freeze([])
/** The `state` our replays carry: a replayed request that comes back with it is never replayed again. */
export const STICKY_REPLAY_STATE = 'nav-sticky'

export type DiscoveryOption = 'dns' | 'static' | 'none' | MachineDiscovery

/**
 * What the step did with a request on a sticky path, once per request: served here for a new visitor (`new`) or
 * for one whose cookie names this Machine (`own`), served here after rejecting the cookie (`rejected`), answered
 * with fly-replay (`replayed`), proxied to the cookie's Machine (`proxied`), the maintenance page with the cookie
 * kept (`fallback`), served here with the cookie moved to this Machine (`re-pinned`), or served here because another
 * part of Navigator routed the request here (`routed`).
 */
export type StickyDecision = 'new' | 'own' | 'rejected' | 'replayed' | 'proxied' | 'fallback' | 're-pinned' | 'routed'

/**
 * Told every decision, with the reason of a rejected cookie (else null) and the Machine it concerns: the one the cookie
 * names for a replay, a direct proxy, a fallback or a re-pin (the Machine the user was moved off), this Machine
 * otherwise, and the request's context (so a count can note on the response what was decided). For metrics and the
 * status page; called on the request path.
 */
export type StickyObserver = (decision: StickyDecision, reason: CookieRejection | null, machine: string, ctx: RequestContext) => void

export interface StickySessionsOptions {
  /** Registering the plugin opts in, so this defaults to true (the YAML key defaults to false). */
  enabled?: boolean
  cookieName?: string
  /** Milliseconds, or a Go duration such as "24h"; 0 = a session cookie (no Max-Age). */
  cookieMaxAge?: number | string
  cookieSecure?: boolean
  cookieHttpOnly?: boolean
  /** Strict, Lax or None, in any case. None requires cookieSecure. */
  cookieSameSite?: string
  cookiePath?: string
  /** The cookie's Domain attribute (a host such as example.com); default none. */
  cookieDomain?: string
  /** The Partitioned attribute; requires cookieSecure and cookieSameSite None. */
  cookiePartitioned?: boolean
  /** A request header that pins like the cookie when there is no cookie; answers served here carry it. Default none. */
  headerName?: string
  /** Sticky path patterns; empty = every path. */
  paths?: readonly string[]
  fallbackMode?: FallbackMode
  /** Signs the cookie; with a list, the first signs and all verify. */
  secret?: string | readonly string[]
  /** How long Fly may try the target before handing the request back; milliseconds or a Go duration. */
  replayTimeout?: number | string
  /** true: replays are prefer_instance=T alone, which Fly's session replay cache can keep. */
  replayCache?: boolean
  replayStatus?: number
  /** Largest body (Content-Length, bytes) answered with fly-replay; default 1,000,000 (Fly's 1 MB). */
  maxReplayBody?: number
  /** How a body too large to replay reaches the cookie's Machine: "vm" (private address) or "flycast" (Fly's proxy). */
  directProxy?: DirectProxyMode
  /** Port of the Flycast service; default `port`. */
  flycastPort?: number
  /** Origin used instead of http://<app>.flycast:<flycastPort>. */
  flycastUrl?: string
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
  /** Every response on a sticky path carries `x-navigator-sticky: <decision>; machine=<id>`. Default false. */
  debugHeader?: boolean
  /** Told each decision, for metrics; default none (then nothing is called). */
  onDecision?: StickyObserver
}

/** The cookie's attributes, checked. */
export interface CookieAttributes {
  cookieName: string
  /** null: a session cookie (no Max-Age). */
  cookieMaxAgeSeconds: number | null
  cookieSecure: boolean
  cookieHttpOnly: boolean
  cookieSameSite: SameSite
  cookiePath: string
  cookieDomain: string | null
  cookiePartitioned: boolean
}

export interface ResolvedOptions extends CookieAttributes {
  enabled: boolean
  /** Lower-case, or null when no header pins. */
  headerName: string | null
  paths: readonly string[]
  fallbackMode: FallbackMode
  secrets: readonly string[]
  replayTimeoutMs: number
  replayCache: boolean
  replayStatus: number
  maxReplayBody: number
  directProxy: DirectProxyMode
  flycastPort: number
  /** The Flycast origin given, or null for http://<app>.flycast:<flycastPort>. */
  flycastUrl: string | null
  peers: ReadonlyMap<string, string>
  machineId: string | null
  appName: string | null
  region: string | null
  port: number
  discovery: DiscoveryOption
  proxy: UpstreamProxy | null
  maintenance: MaintenanceResponder | null
  debugHeader: boolean
  onDecision: StickyObserver | null
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

/** Milliseconds from a number or a Go duration; 0 only when `zero` says what it means. */
function durationMs (name: string, value: unknown, fallback: string, zero?: string): number {
  const given = value ?? fallback
  let ms: number
  if (typeof given === 'number') {
    ms = given
  } else if (typeof given === 'string') {
    try {
      ms = parseDuration(given)
    } catch (err) {
      fail(name, (err as Error).message)
    }
  } else {
    fail(name, 'must be milliseconds or a Go duration such as "24h"')
  }
  if (ms === 0 && zero !== undefined) return 0
  if (!Number.isFinite(ms) || ms <= 0) fail(name, zero === undefined ? 'must be longer than zero' : `must be longer than zero, or 0 (${zero})`)
  return ms
}

function nonNegativeInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(name, `${String(value)} is not a number of bytes`)
  return value
}

function checkedPort (name: string, value: unknown, fallback: number): number {
  const port = value ?? fallback
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) fail(name, `${String(port)} is not a TCP port`)
  return port
}

function identity (name: string, value: unknown, valid: (text: string) => boolean): string | null {
  if (value === undefined || value === '') return null
  if (typeof value !== 'string' || !valid(value)) fail(name, `${JSON.stringify(value)} is not valid`)
  return value
}

function originOf (name: string, url: unknown): string {
  if (typeof url !== 'string') fail(name, 'must be a URL such as http://10.0.0.2:3000')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    fail(name, `${JSON.stringify(url)} is not a URL`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') fail(name, 'must be an http or https URL')
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '') {
    fail(name, 'must be an origin only (scheme, host and port)')
  }
  return parsed.origin
}

/** The cookie's attributes, with the combinations browsers refuse rejected as the YAML loader rejects them. */
function resolveCookie (options: StickySessionsOptions): CookieAttributes {
  const cookieName = options.cookieName ?? DEFAULT_COOKIE_NAME
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) fail('cookieName', `${JSON.stringify(cookieName)} is not a cookie name`)
  const maxAgeMs = durationMs('cookieMaxAge', options.cookieMaxAge, DEFAULT_COOKIE_MAX_AGE, 'a session cookie')
  if (maxAgeMs > 0 && maxAgeMs < 1000) fail('cookieMaxAge', 'must be 0 (a session cookie) or at least one second')
  const cookieSecure = bool('cookieSecure', options.cookieSecure, DEFAULT_COOKIE_SECURE)
  const sameSiteText = options.cookieSameSite ?? DEFAULT_COOKIE_SAME_SITE
  const cookieSameSite = typeof sameSiteText === 'string' ? SAME_SITE[sameSiteText.toLowerCase()] : undefined
  if (cookieSameSite === undefined) fail('cookieSameSite', `${JSON.stringify(sameSiteText)} is not Strict, Lax or None`)
  if (cookieSameSite === 'None' && !cookieSecure) fail('cookieSameSite', 'None requires cookieSecure: true (browsers drop such cookies)')
  const cookiePath = options.cookiePath ?? DEFAULT_COOKIE_PATH
  if (typeof cookiePath !== 'string' || !COOKIE_PATH.test(cookiePath)) fail('cookiePath', `${JSON.stringify(cookiePath)} is not a cookie path`)
  const cookieDomain = options.cookieDomain ?? null
  if (cookieDomain !== null) {
    const problem = typeof cookieDomain === 'string' ? cookieDomainProblem(cookieDomain) : 'must be a domain name'
    if (problem !== null) fail('cookieDomain', problem)
  }
  const cookiePartitioned = bool('cookiePartitioned', options.cookiePartitioned, DEFAULT_COOKIE_PARTITIONED)
  if (cookiePartitioned && (!cookieSecure || cookieSameSite !== 'None')) {
    fail('cookiePartitioned', 'requires cookieSecure: true and cookieSameSite: "None" (browsers refuse a Partitioned cookie otherwise)')
  }
  return {
    cookieName,
    cookieMaxAgeSeconds: maxAgeMs === 0 ? null : Math.floor(maxAgeMs / 1000),
    cookieSecure,
    cookieHttpOnly: bool('cookieHttpOnly', options.cookieHttpOnly, DEFAULT_COOKIE_HTTP_ONLY),
    cookieSameSite,
    cookiePath,
    cookieDomain,
    cookiePartitioned
  }
}

function resolveHeaderName (value: unknown): string | null {
  if (value === undefined) return null
  const problem = typeof value === 'string' ? stickyHeaderProblem(value) : 'must be a header name'
  if (problem !== null) fail('headerName', problem)
  return (value as string).toLowerCase()
}

/** Validates the options and applies defaults; throws NAV_STICKY_SESSIONS_INVALID_OPTION naming the option. */
export function resolveOptions (options: StickySessionsOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedOptions {
  if (options === null || typeof options !== 'object') fail('options', 'must be an object')
  const cookie = resolveCookie(options)
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
  const peers = resolvePeers(options.peers)
  const port = checkedPort('port', options.port, DEFAULT_PORT)
  const directProxy = options.directProxy ?? DEFAULT_DIRECT_PROXY_MODE
  if (directProxy !== 'vm' && directProxy !== 'flycast') fail('directProxy', `${JSON.stringify(directProxy)} is not "vm" or "flycast"`)

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
  if (options.onDecision !== undefined && typeof options.onDecision !== 'function') fail('onDecision', 'must be a function (decision, reason)')

  return {
    ...cookie,
    enabled: bool('enabled', options.enabled, DEFAULT_ENABLED),
    headerName: resolveHeaderName(options.headerName),
    paths: options.paths ?? DEFAULT_PATHS,
    fallbackMode,
    secrets: [...secretList],
    replayTimeoutMs: durationMs('replayTimeout', options.replayTimeout, DEFAULT_REPLAY_TIMEOUT),
    replayCache: bool('replayCache', options.replayCache, DEFAULT_REPLAY_CACHE),
    replayStatus,
    maxReplayBody: nonNegativeInteger('maxReplayBody', options.maxReplayBody, DEFAULT_MAX_REPLAY_BODY),
    directProxy,
    flycastPort: checkedPort('flycastPort', options.flycastPort, port),
    flycastUrl: options.flycastUrl === undefined ? null : originOf('flycastUrl', options.flycastUrl),
    peers,
    machineId: identity('machineId', options.machineId ?? env.FLY_MACHINE_ID, isValidMachineId),
    appName,
    region: identity('region', options.region ?? env.FLY_REGION, (text) => REGION_PATTERN.test(text)),
    port,
    discovery: discovery ?? (peers.size > 0 ? 'static' : appName !== null ? 'dns' : 'none'),
    proxy: options.proxy ?? null,
    maintenance: options.maintenance ?? null,
    debugHeader: bool('debugHeader', options.debugHeader, DEFAULT_STICKY_DEBUG_HEADER),
    onDecision: options.onDecision ?? null
  }
}

function resolvePeers (given: StickySessionsOptions['peers']): Map<string, string> {
  const peers = new Map<string, string>()
  if (given === undefined) return peers
  if (given === null || typeof given !== 'object') fail('peers', 'must be an object { machineId: url }')
  for (const [id, url] of Object.entries(given)) {
    if (!isValidMachineId(id)) fail('peers', `${JSON.stringify(id)} is not a Machine ID`)
    peers.set(id, originOf(`peers.${id}`, url))
  }
  return peers
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
    cookieDomain: config.cookieDomain ?? undefined,
    cookiePartitioned: config.cookiePartitioned,
    headerName: config.headerName ?? undefined,
    paths: config.paths,
    fallbackMode: config.fallbackMode,
    secret: config.secrets.length === 0 ? undefined : config.secrets,
    replayTimeout: config.replayTimeoutMs,
    replayCache: config.replayCache,
    directProxy: config.directProxy,
    flycastPort: config.flycastPort ?? undefined,
    flycastUrl: config.flycastUrl ?? undefined,
    peers: config.peers,
    debugHeader: config.debugHeader
  }
}
