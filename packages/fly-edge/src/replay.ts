// What the edge understands of a Machine's fly-replay answer: the header form, the
// application/vnd.fly.replay+json body form, and the headers the edge adds to the
// re-delivered request (fly-replay-src, fly-replay-failed).

import { parseDuration } from '@navigator/config'
import {
  APP_PATTERN,
  FALLBACKS,
  MACHINE_ID_PATTERN,
  parseReplayHeader,
  REGION_PATTERN,
  REPLAY_JSON_CONTENT_TYPE,
  STATE_PATTERN,
  type ReplayFallback,
  type ReplayFields
} from '@navigator/fly-replay'

export const REPLAY_CONTENT_TYPE = REPLAY_JSON_CONTENT_TYPE

export interface ReplayTransform {
  path?: string
  deleteHeaders: string[]
  setHeaders: Array<{ name: string, value: string }>
}

/** A parsed replay instruction, as the edge acts on it. */
export interface EdgeReplay {
  instance?: string
  preferInstance?: string
  /** Region codes or aliases in preference order. */
  regions?: string[]
  app?: string
  state?: string
  elsewhere: boolean
  timeoutMs?: number
  fallback?: ReplayFallback
  transform?: ReplayTransform
  /** `fly-replay-cache: invalidate` (or JSON `cache.invalidate`): forget the cached replay of this request. */
  cacheInvalidate?: boolean
}

function hasTarget (replay: EdgeReplay): boolean {
  return replay.instance !== undefined || replay.preferInstance !== undefined ||
    replay.regions !== undefined || replay.app !== undefined || replay.elsewhere
}

function fromFields (fields: ReplayFields): EdgeReplay | null {
  const replay: EdgeReplay = { elsewhere: fields.elsewhere === true }
  if (fields.instance !== undefined) replay.instance = fields.instance
  if (fields.preferInstance !== undefined) replay.preferInstance = fields.preferInstance
  if (fields.region !== undefined) replay.regions = Array.isArray(fields.region) ? fields.region : [fields.region]
  if (fields.app !== undefined) replay.app = fields.app
  if (fields.state !== undefined) replay.state = fields.state
  if (fields.timeoutMs !== undefined) replay.timeoutMs = fields.timeoutMs
  if (fields.fallback !== undefined) replay.fallback = fields.fallback
  return hasTarget(replay) ? replay : null
}

/**
 * Read a `fly-replay` header value with @navigator/fly-replay's tolerant parser (a part
 * outside its grammar is left out). Null when no target (instance, prefer_instance,
 * region, app, elsewhere) remains.
 */
export function parseReplayAnswer (value: string): EdgeReplay | null {
  const fields = parseReplayHeader(value)
  return fields === null ? null : fromFields(fields)
}

function jsonString (value: unknown, grammar: RegExp): string | undefined {
  return typeof value === 'string' && grammar.test(value) ? value : undefined
}

function jsonDuration (value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined
  try {
    return parseDuration(value)
  } catch {
    return undefined
  }
}

function isHeaderName (name: unknown): name is string {
  return typeof name === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)
}

/**
 * Parse the JSON body form: the fields of the header (same grammar, same tolerance) plus
 * `transform`. Null when the body is not a JSON object, the transform is malformed, or
 * no target remains.
 */
export function parseReplayJson (body: string): EdgeReplay | null {
  let data: unknown
  try {
    data = JSON.parse(body)
  } catch {
    return null
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null
  const input = data as Record<string, unknown>
  const regions = Array.isArray(input.region) ? input.region : typeof input.region === 'string' ? input.region.split(',') : []
  const fields: ReplayFields = {
    instance: jsonString(input.instance, MACHINE_ID_PATTERN),
    preferInstance: jsonString(input.prefer_instance, MACHINE_ID_PATTERN),
    region: regions.length > 0 && regions.every((r) => typeof r === 'string' && REGION_PATTERN.test(r)) ? regions as string[] : undefined,
    app: jsonString(input.app, APP_PATTERN),
    state: jsonString(input.state, STATE_PATTERN),
    timeoutMs: jsonDuration(input.timeout),
    fallback: FALLBACKS.find((f) => f === input.fallback),
    elsewhere: input.elsewhere === true
  }
  const replay = fromFields(fields)
  if (replay === null) return null
  if (input.transform !== undefined) {
    const transform = parseTransform(input.transform)
    if (transform === null) return null
    replay.transform = transform
  }
  const cache = input.cache as Record<string, unknown> | undefined
  if (typeof cache === 'object' && cache !== null && cache.invalidate === true) replay.cacheInvalidate = true
  return replay
}

function parseTransform (value: unknown): ReplayTransform | null {
  if (typeof value !== 'object' || value === null) return null
  const input = value as Record<string, unknown>
  const transform: ReplayTransform = { deleteHeaders: [], setHeaders: [] }
  if (input.path !== undefined) {
    if (typeof input.path !== 'string' || !input.path.startsWith('/') || /[\s]/.test(input.path)) return null
    transform.path = input.path
  }
  if (input.delete_headers !== undefined) {
    if (!Array.isArray(input.delete_headers) || !input.delete_headers.every(isHeaderName)) return null
    transform.deleteHeaders = input.delete_headers.map((h) => h.toLowerCase())
  }
  if (input.set_headers !== undefined) {
    if (!Array.isArray(input.set_headers)) return null
    for (const entry of input.set_headers) {
      const { name, value: headerValue } = (entry ?? {}) as { name?: unknown, value?: unknown }
      if (!isHeaderName(name) || typeof headerValue !== 'string' || /[\r\n\0]/.test(headerValue)) return null
      transform.setHeaders.push({ name: name.toLowerCase(), value: headerValue })
    }
  }
  return transform
}

export interface ReplaySource {
  instance: string
  region: string
  state?: string
}

/** The `fly-replay-src` value added to a replayed request. */
export function formatReplaySrc (source: ReplaySource, nowMicros: number): string {
  const parts = [`instance=${source.instance}`, `region=${source.region}`, `t=${nowMicros}`]
  if (source.state !== undefined) parts.push(`state=${source.state}`)
  return parts.join(';')
}

export type ReplayFailureReason = 'timeout' | 'retries_exhausted' | 'no_candidate'

export interface ReplayFailure {
  /** The target that could not be reached (instance may be empty for region/app targets). */
  instance: string
  app: string
  region: string
  /** The Machine that issued the replay. */
  replaySource: string
  reason: ReplayFailureReason
  elapsedMs: number
}

/** The `fly-replay-failed` value added to a fallback request. */
export function formatReplayFailed (failure: ReplayFailure): string {
  return [
    `instance=${failure.instance}`,
    `app=${failure.app}`,
    `region=${failure.region}`,
    `replay_source=${failure.replaySource}`,
    `reason=${failure.reason}`,
    `elapsed_ms=${Math.round(failure.elapsedMs)}`
  ].join(';')
}
