// Session-based replay caching, as Fly's proxy does it for `[[http_service.http_options.replay_cache]]` in fly.toml
// (https://fly.io/docs/networking/dynamic-request-routing/#session-based-replay-caching and
// https://fly.io/docs/reference/configuration/#http_service-http_options-replay_cache): a fly-replay answer to a
// request that carries the rule's cookie or header is remembered for that value, and later requests with the same
// value go straight to the remembered target.

import type { IncomingHttpHeaders } from 'node:http'
import { NAV_FLY_EDGE_INVALID_OPTION } from './errors.js'
import type { EdgeReplay } from './replay.js'

export type ReplayCacheType = 'cookie' | 'header'

/** One `[[http_service.http_options.replay_cache]]` entry, with the edge's option names. */
export interface ReplayCacheRule {
  /** `/path` (any hostname) or `host/path`; implicitly ends with `/*`, so `/` matches every path. */
  pathPrefix: string
  /** How long a replay is remembered; at least MIN_REPLAY_CACHE_TTL_SECONDS, as on Fly. */
  ttlSeconds: number
  type: ReplayCacheType
  /** The cookie or request header whose value keys the cache. */
  name: string
  /** Let a client skip the cache with `fly-replay-cache-control: skip`; default false. */
  allowBypass?: boolean
}

/** The `fly-replay-cache-status` values Fly documents for the replay target. */
export type ReplayCacheStatus = 'hit' | 'miss' | 'bypass'

/** Fly refuses a shorter `ttl_seconds`. */
export const MIN_REPLAY_CACHE_TTL_SECONDS = 10

interface CompiledRule {
  host: string | null
  /** The path without its trailing `/` or `/*`; '' for `/`. */
  path: string
  ttlMs: number
  type: ReplayCacheType
  name: string
  allowBypass: boolean
}

/** A request that a rule applies to: its cache key and whether the client skipped the cache. */
export interface ReplayCacheMatch {
  key: string
  rule: Readonly<CompiledRule>
  bypass: boolean
}

interface Entry { replay: EdgeReplay, expiresAt: number }

// Cookie names and header names share RFC 9110's token grammar.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HOST_PATH = /^([a-z0-9.-]+)?(\/.*)$/i

function compile (rule: ReplayCacheRule, index: number): CompiledRule {
  const at = `replayCache[${index}]`
  if (typeof rule !== 'object' || rule === null) throw new NAV_FLY_EDGE_INVALID_OPTION(`${at} must be an object`)
  const parts = typeof rule.pathPrefix === 'string' ? HOST_PATH.exec(rule.pathPrefix) : null
  if (parts === null || /[\s?#]/.test(rule.pathPrefix)) {
    throw new NAV_FLY_EDGE_INVALID_OPTION(`${at}.pathPrefix must be a path such as /app or a host and path such as example.com/app`)
  }
  if (!Number.isFinite(rule.ttlSeconds) || rule.ttlSeconds < MIN_REPLAY_CACHE_TTL_SECONDS) {
    throw new NAV_FLY_EDGE_INVALID_OPTION(`${at}.ttlSeconds must be a number >= ${MIN_REPLAY_CACHE_TTL_SECONDS}, as on Fly`)
  }
  if (rule.type !== 'cookie' && rule.type !== 'header') throw new NAV_FLY_EDGE_INVALID_OPTION(`${at}.type must be cookie or header`)
  if (typeof rule.name !== 'string' || !TOKEN.test(rule.name)) throw new NAV_FLY_EDGE_INVALID_OPTION(`${at}.name must be a ${rule.type} name`)
  if (rule.allowBypass !== undefined && typeof rule.allowBypass !== 'boolean') {
    throw new NAV_FLY_EDGE_INVALID_OPTION(`${at}.allowBypass must be a boolean`)
  }
  return {
    host: parts[1]?.toLowerCase() ?? null,
    path: parts[2].replace(/\/\*$/, '').replace(/\/$/, ''),
    ttlMs: rule.ttlSeconds * 1000,
    type: rule.type,
    name: rule.type === 'header' ? rule.name.toLowerCase() : rule.name,
    allowBypass: rule.allowBypass ?? false
  }
}

function pathMatches (rule: CompiledRule, path: string): boolean {
  return rule.path === '' || path === rule.path || path.startsWith(`${rule.path}/`)
}

/**
 * The raw value of cookie `name` in a Cookie header, or undefined. Only the value is needed, as an opaque cache key,
 * so this reads the header as RFC 6265 writes it rather than pulling a cookie library into the edge.
 */
export function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}

function valueOf (rule: CompiledRule, headers: IncomingHttpHeaders): string | undefined {
  if (rule.type === 'cookie') return cookieValue(headers.cookie, rule.name)
  const value = headers[rule.name]
  return Array.isArray(value) ? value.join(', ') : value
}

/** A replay that may be cached: Fly caches none with `state`, `timeout`, `fallback` or a transform. */
export function isCacheableReplay (replay: EdgeReplay): boolean {
  return replay.state === undefined && replay.timeoutMs === undefined && replay.fallback === undefined &&
    replay.transform === undefined
}

/** The remembered replays of one app's listeners, by host, rule and cookie or header value. */
export class ReplayCache {
  readonly #rules: CompiledRule[]
  readonly #entries = new Map<string, Entry>()
  readonly #now: () => number

  constructor (rules: ReplayCacheRule[], now: () => number = Date.now) {
    if (!Array.isArray(rules)) throw new NAV_FLY_EDGE_INVALID_OPTION('replayCache must be an array of rules')
    // Longest path first: when several rules match, the longest matching path takes precedence.
    this.#rules = rules.map(compile).sort((a, b) => b.path.length - a.path.length || Number(b.host !== null) - Number(a.host !== null))
    this.#now = now
  }

  get size (): number {
    return this.#entries.size
  }

  /**
   * The rule that applies to a request (the longest one matching its host and path), when the request carries that
   * rule's cookie or header. Each Host keeps its own cache, as on Fly; on this edge the Host includes the port, so
   * the public and Flycast listeners do not share entries either.
   */
  match (host: string, path: string, headers: IncomingHttpHeaders): ReplayCacheMatch | null {
    if (this.#rules.length === 0) return null
    const hostname = host.replace(/:\d+$/, '').toLowerCase()
    const rule = this.#rules.find((r) => (r.host === null || r.host === hostname) && pathMatches(r, path))
    if (rule === undefined) return null
    const value = valueOf(rule, headers)
    if (value === undefined || value === '') return null
    const bypass = rule.allowBypass && String(headers['fly-replay-cache-control'] ?? '').toLowerCase() === 'skip'
    return { key: `${host.toLowerCase()}\n${rule.host ?? ''}${rule.path}\n${rule.type}:${rule.name}=${value}`, rule, bypass }
  }

  get (key: string): EdgeReplay | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt > this.#now()) return entry.replay
    this.#entries.delete(key)
    return undefined
  }

  set (match: ReplayCacheMatch, replay: EdgeReplay): void {
    this.#entries.set(match.key, { replay, expiresAt: this.#now() + match.rule.ttlMs })
  }

  delete (key: string): void {
    this.#entries.delete(key)
  }
}

const RULE_KEYS = new Map<string, keyof ReplayCacheRule>([
  ['path_prefix', 'pathPrefix'], ['ttl_seconds', 'ttlSeconds'], ['type', 'type'], ['name', 'name'], ['allow_bypass', 'allowBypass']
])

/** A CLI value as the rule's type; one that does not convert stays a string, and compile() names the problem. */
function ruleValue (key: keyof ReplayCacheRule, value: string): unknown {
  if (key === 'ttlSeconds') return Number(value)
  if (key === 'allowBypass' && (value === 'true' || value === 'false')) return value === 'true'
  return value
}

/**
 * A rule written as the CLI takes it, with fly.toml's key names:
 * `path_prefix=/,ttl_seconds=300,type=cookie,name=session_id[,allow_bypass=true]`.
 */
export function parseReplayCacheRule (text: string): ReplayCacheRule {
  const rule: Record<string, unknown> = {}
  for (const part of text.split(',')) {
    const eq = part.indexOf('=')
    const key = eq === -1 ? undefined : RULE_KEYS.get(part.slice(0, eq).trim())
    if (key === undefined) {
      throw new NAV_FLY_EDGE_INVALID_OPTION(`replay cache rule ${JSON.stringify(text)}: ${JSON.stringify(part)} is not one of ${[...RULE_KEYS.keys()].join(', ')}=value`)
    }
    rule[key] = ruleValue(key, part.slice(eq + 1).trim())
  }
  for (const required of ['path_prefix', 'ttl_seconds', 'type', 'name']) {
    if (rule[RULE_KEYS.get(required) as string] === undefined) throw new NAV_FLY_EDGE_INVALID_OPTION(`replay cache rule ${JSON.stringify(text)} has no ${required}`)
  }
  const parsed = rule as unknown as ReplayCacheRule
  compile(parsed, 0)
  return parsed
}
