// What the edge understands of a Machine's fly-replay answer: the header form, the
// application/vnd.fly.replay+json body form, and the headers the edge adds to the
// re-delivered request (fly-replay-src, fly-replay-failed).

export const REPLAY_CONTENT_TYPE = 'application/vnd.fly.replay+json'
/** A request body of this many bytes or more is never replayed (Fly's 1 MiB rule). */
export const MAX_REPLAY_BODY_BYTES = 1_048_576

export type ReplayFallback = 'force_self' | 'prefer_self'

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
}

const TOKEN = /^[A-Za-z0-9._~-]{1,128}$/
const REGION = /^[a-z0-9]{2,8}$/
const DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y
const DURATION_UNIT_MS: Record<string, number> = {
  ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000
}

/** Go-style duration ("800ms", "10s", "1m30s") to milliseconds, or null. */
export function parseReplayDuration (text: string): number | null {
  if (text.length === 0) return null
  if (text === '0') return 0
  let total = 0
  DURATION_PART.lastIndex = 0
  while (DURATION_PART.lastIndex < text.length) {
    const start = DURATION_PART.lastIndex
    const match = DURATION_PART.exec(text)
    if (match === null || match.index !== start) return null
    total += Number(match[1]) * DURATION_UNIT_MS[match[2]]
  }
  return total
}

function splitFields (value: string): Array<[string, string]> | null {
  const fields: Array<[string, string]> = []
  let i = 0
  while (i < value.length) {
    while (value[i] === ' ' || value[i] === '\t') i++
    const eq = value.indexOf('=', i)
    if (eq === -1) return null
    const key = value.slice(i, eq).trim().toLowerCase()
    let j = eq + 1
    let fieldValue: string
    if (value[j] === '"') {
      const close = value.indexOf('"', j + 1)
      if (close === -1) return null
      fieldValue = value.slice(j + 1, close)
      j = close + 1
      while (value[j] === ' ' || value[j] === '\t') j++
      if (j < value.length && value[j] !== ';') return null
    } else {
      const semi = value.indexOf(';', j)
      const end = semi === -1 ? value.length : semi
      fieldValue = value.slice(j, end).trim()
      j = end
    }
    fields.push([key, fieldValue])
    i = j + 1
  }
  return fields
}

function parseRegions (value: string): string[] | null {
  const regions = value.split(',').map((r) => r.trim().toLowerCase())
  return regions.every((r) => REGION.test(r)) ? regions : null
}

function hasTarget (replay: EdgeReplay): boolean {
  return replay.instance !== undefined || replay.preferInstance !== undefined ||
    replay.regions !== undefined || replay.app !== undefined || replay.elsewhere
}

/**
 * Parse a `fly-replay` header value. Returns null when a field is malformed, a field
 * repeats, or no target (instance, prefer_instance, region, app, elsewhere) is given.
 * Unknown fields are ignored, as a proxy would for forward compatibility.
 */
export function parseReplayHeader (value: string): EdgeReplay | null {
  const fields = splitFields(value)
  if (fields === null || fields.length === 0) return null
  const replay: EdgeReplay = { elsewhere: false }
  const seen = new Set<string>()
  for (const [key, raw] of fields) {
    if (seen.has(key)) return null
    seen.add(key)
    if (!applyField(replay, key, raw)) return null
  }
  return hasTarget(replay) ? replay : null
}

function applyField (replay: EdgeReplay, key: string, raw: string): boolean {
  switch (key) {
    case 'instance':
      if (!TOKEN.test(raw)) return false
      replay.instance = raw
      return true
    case 'prefer_instance':
      if (!TOKEN.test(raw)) return false
      replay.preferInstance = raw
      return true
    case 'app':
      if (!TOKEN.test(raw)) return false
      replay.app = raw
      return true
    case 'region': {
      const regions = parseRegions(raw)
      if (regions === null) return false
      replay.regions = regions
      return true
    }
    case 'state':
      // Opaque, echoed into a request header: printable ASCII only.
      if (!/^[\x20-\x7e]{0,1024}$/.test(raw)) return false
      replay.state = raw
      return true
    case 'elsewhere':
      if (raw !== 'true' && raw !== 'false') return false
      replay.elsewhere = raw === 'true'
      return true
    case 'timeout': {
      const ms = parseReplayDuration(raw)
      if (ms === null) return false
      replay.timeoutMs = ms
      return true
    }
    case 'fallback':
      if (raw !== 'force_self' && raw !== 'prefer_self') return false
      replay.fallback = raw
      return true
    default:
      return true
  }
}

function isHeaderName (name: unknown): name is string {
  return typeof name === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)
}

/** Parse the JSON body form; same fields as the header plus `transform`. Null when invalid. */
export function parseReplayJson (body: string): EdgeReplay | null {
  let data: unknown
  try {
    data = JSON.parse(body)
  } catch {
    return null
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null
  const replay: EdgeReplay = { elsewhere: false }
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (key === 'transform') {
      const transform = parseTransform(value)
      if (transform === null) return null
      replay.transform = transform
      continue
    }
    if (key === 'elsewhere' && typeof value === 'boolean') {
      replay.elsewhere = value
      continue
    }
    if (key === 'region' && Array.isArray(value)) {
      if (!applyField(replay, key, value.join(','))) return null
      continue
    }
    if (typeof value === 'string' && !applyField(replay, key, value)) return null
  }
  return hasTarget(replay) ? replay : null
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
