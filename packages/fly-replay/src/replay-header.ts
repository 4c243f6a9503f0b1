import { parseDuration, MACHINE_ID_PATTERN } from '@navigator/config'
import { InvalidReplayFieldError } from './errors.js'
import { APP_PATTERN, FALLBACKS, REGION_PATTERN, STATE_PATTERN, type ReplayFallback } from './grammar.js'
import { readFields, validField } from './replay-fields.js'

/** The parts of a `fly-replay` answer. At least one of instance, preferInstance, region or app is required. */
export interface ReplayFields {
  /** Machine ID that must receive the request. */
  instance?: string
  /** Machine ID that should receive it if possible. */
  preferInstance?: string
  /** Region code or alias (`any`, `us`, ...), or several in order of preference. */
  region?: string | string[]
  /** Another app of the same organisation. */
  app?: string
  /** Opaque token echoed back in `fly-replay-src` on the replayed request. */
  state?: string
  /** How long Fly may try to reach the target, in milliseconds. */
  timeoutMs?: number
  /** What Fly does when the target cannot be reached in time. */
  fallback?: ReplayFallback
  /** Leave the replaying Machine out of the next load-balancing pick. */
  elsewhere?: boolean
}

/** The `application/vnd.fly.replay+json` body: the same fields, snake_case, values as Fly spells them. */
export interface ReplayJson {
  instance?: string
  prefer_instance?: string
  region?: string
  app?: string
  state?: string
  timeout?: string
  fallback?: ReplayFallback
  elsewhere?: boolean
}

export const REPLAY_JSON_CONTENT_TYPE = 'application/vnd.fly.replay+json'

function checked (name: string, value: unknown, grammar: RegExp): string {
  if (typeof value !== 'string' || !grammar.test(value)) {
    throw new InvalidReplayFieldError(name, `${describe(value)} does not match ${String(grammar)}`)
  }
  return value
}

function describe (value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value)
  return text.length > 40 ? `${text.slice(0, 40)}...` : text
}

function checkedRegions (value: string | string[]): string {
  const regions = Array.isArray(value) ? value : [value]
  if (regions.length === 0) throw new InvalidReplayFieldError('region', 'the list is empty')
  return regions.map((region) => checked('region', region, REGION_PATTERN)).join(',')
}

/**
 * Written as Fly's documentation writes durations: whole seconds (`90s`) when the value is a whole number of
 * seconds, else whole milliseconds, rounded up (`1500ms`). Never a compound (`1m30s`), a fraction (`1.5s`), `µs`
 * (not ASCII) or an exponent (`1e+21`): a single integer and unit is what every reader of the field understands.
 */
function checkedTimeout (value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || !Number.isSafeInteger(Math.ceil(value))) {
    throw new InvalidReplayFieldError('timeout', `${describe(value)} is not a positive number of milliseconds`)
  }
  const ms = Math.ceil(value)
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

function checkedFallback (value: unknown): ReplayFallback {
  if (!FALLBACKS.includes(value as ReplayFallback)) {
    throw new InvalidReplayFieldError('fallback', `${describe(value)} is not one of ${FALLBACKS.join(', ')}`)
  }
  return value as ReplayFallback
}

/** Validates every field and returns them in Fly's spelling; throws NAV_FLY_REPLAY_INVALID_FIELD otherwise. */
export function buildReplayJson (fields: ReplayFields): ReplayJson {
  const out: ReplayJson = {}
  if (fields.instance !== undefined) out.instance = checked('instance', fields.instance, MACHINE_ID_PATTERN)
  if (fields.preferInstance !== undefined) {
    out.prefer_instance = checked('prefer_instance', fields.preferInstance, MACHINE_ID_PATTERN)
  }
  if (fields.region !== undefined) out.region = checkedRegions(fields.region)
  if (fields.app !== undefined) out.app = checked('app', fields.app, APP_PATTERN)
  if (out.instance === undefined && out.prefer_instance === undefined && out.region === undefined && out.app === undefined) {
    throw new InvalidReplayFieldError('target', 'one of instance, preferInstance, region or app is required')
  }
  if (fields.state !== undefined) out.state = checked('state', fields.state, STATE_PATTERN)
  if (fields.timeoutMs !== undefined) out.timeout = checkedTimeout(fields.timeoutMs)
  if (fields.fallback !== undefined) out.fallback = checkedFallback(fields.fallback)
  if (fields.elsewhere !== undefined) {
    if (typeof fields.elsewhere !== 'boolean') throw new InvalidReplayFieldError('elsewhere', 'must be a boolean')
    out.elsewhere = fields.elsewhere
  }
  return out
}

/**
 * Builds a `fly-replay` header value such as `instance=abc;state=nav;timeout=10s;fallback=force_self` or
 * `region="sjc,any"`. Every part is checked against its grammar; throws NAV_FLY_REPLAY_INVALID_FIELD otherwise.
 */
export function buildReplayHeader (fields: ReplayFields): string {
  const json = buildReplayJson(fields)
  const parts: string[] = []
  if (json.instance !== undefined) parts.push(`instance=${json.instance}`)
  if (json.prefer_instance !== undefined) parts.push(`prefer_instance=${json.prefer_instance}`)
  if (json.region !== undefined) parts.push(json.region.includes(',') ? `region="${json.region}"` : `region=${json.region}`)
  if (json.app !== undefined) parts.push(`app=${json.app}`)
  if (json.state !== undefined) parts.push(`state=${json.state}`)
  if (json.elsewhere === true) parts.push('elsewhere=true')
  if (json.timeout !== undefined) parts.push(`timeout=${json.timeout}`)
  if (json.fallback !== undefined) parts.push(`fallback=${json.fallback}`)
  return parts.join(';')
}

const MACHINE = MACHINE_ID_PATTERN
const REGION_LIST = /^[a-z0-9]{2,8}(?:,[a-z0-9]{2,8})*$/
const DURATION_TEXT = /^[0-9.a-zµμ]{1,32}$/

function readDuration (text: string | undefined): number | undefined {
  if (text === undefined || !DURATION_TEXT.test(text)) return undefined
  try {
    return parseDuration(text)
  } catch {
    return undefined
  }
}

/** Reads a `fly-replay` value (as the local edge or a test sees it). Tolerant: invalid parts are left out; never throws. */
export function parseReplayHeader (value: unknown): ReplayFields | null {
  const fields = readFields(value)
  if (fields === null) return null
  const out: ReplayFields = {}
  const instance = validField(fields, 'instance', MACHINE)
  if (instance !== undefined) out.instance = instance
  const preferInstance = validField(fields, 'prefer_instance', MACHINE)
  if (preferInstance !== undefined) out.preferInstance = preferInstance
  const region = validField(fields, 'region', REGION_LIST)
  if (region !== undefined) out.region = region.includes(',') ? region.split(',') : region
  const app = validField(fields, 'app', APP_PATTERN)
  if (app !== undefined) out.app = app
  const state = validField(fields, 'state', STATE_PATTERN)
  if (state !== undefined) out.state = state
  const timeoutMs = readDuration(fields.get('timeout'))
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs
  const fallback = fields.get('fallback')
  if (FALLBACKS.includes(fallback as ReplayFallback)) out.fallback = fallback as ReplayFallback
  const elsewhere = fields.get('elsewhere')
  if (elsewhere === 'true' || elsewhere === 'false') out.elsewhere = elsewhere === 'true'
  return Object.keys(out).length === 0 ? null : out
}
