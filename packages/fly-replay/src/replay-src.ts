import { MACHINE_ID_PATTERN } from '@navigator/config'
import { APP_PATTERN, REGION_PATTERN, STATE_PATTERN } from './grammar.js'
import { readFields, validField } from './replay-fields.js'

/** What Fly tells the Machine that receives a replayed request (`fly-replay-src`). */
export interface ReplaySource {
  /** The Machine that answered with fly-replay. */
  instance?: string
  /** The region it answered from. */
  region?: string
  /** When the replay happened, microseconds since the epoch. */
  t?: number
  /** The `state` the replaying Machine put in its fly-replay value. */
  state?: string
}

/** What Fly tells the issuing Machine when a replay with a fallback could not reach its target (`fly-replay-failed`). */
export interface ReplayFailure {
  /** The target Machine, app and region that could not be reached. */
  instance?: string
  app?: string
  region?: string
  replaySource?: string
  reason?: string
  elapsedMs?: number
}

/**
 * Every `state` Navigator writes into its own fly-replay answers starts with this (`nav-rule` for replay rules,
 * `nav-sticky` for sticky sessions). A request whose `fly-replay-src` carries such a state was replayed by Navigator
 * once already, by whichever feature on whichever Machine: no feature replays it again, so two features that
 * disagree about where a request belongs cannot bounce it between Machines.
 */
export const NAVIGATOR_STATE_PREFIX = 'nav-'

const NUMBER = /^\d{1,20}$/
const REASON = /^[a-z_]{1,64}$/

/** Reads `fly-replay-src`; tolerant and total: null for an absent or unusable value, never throws. */
export function parseReplaySrc (value: unknown): ReplaySource | null {
  const fields = readFields(value)
  if (fields === null) return null
  const out: ReplaySource = {}
  const instance = validField(fields, 'instance', MACHINE_ID_PATTERN)
  if (instance !== undefined) out.instance = instance
  const region = validField(fields, 'region', REGION_PATTERN)
  if (region !== undefined) out.region = region
  const t = validField(fields, 't', NUMBER)
  if (t !== undefined) out.t = Number(t)
  const state = validField(fields, 'state', STATE_PATTERN)
  if (state !== undefined) out.state = state
  return Object.keys(out).length === 0 ? null : out
}

/** The Navigator `state` of a `fly-replay-src` value (see NAVIGATOR_STATE_PREFIX), or null; never throws. */
export function navigatorReplayState (value: unknown): string | null {
  if (value === undefined) return null
  const state = parseReplaySrc(value)?.state
  return state !== undefined && state.startsWith(NAVIGATOR_STATE_PREFIX) ? state : null
}

/** Reads `fly-replay-failed`; tolerant and total: null for an absent or unusable value, never throws. */
export function parseReplayFailed (value: unknown): ReplayFailure | null {
  const fields = readFields(value)
  if (fields === null) return null
  const out: ReplayFailure = {}
  const instance = validField(fields, 'instance', MACHINE_ID_PATTERN)
  if (instance !== undefined) out.instance = instance
  const app = validField(fields, 'app', APP_PATTERN)
  if (app !== undefined) out.app = app
  const region = validField(fields, 'region', REGION_PATTERN)
  if (region !== undefined) out.region = region
  const source = validField(fields, 'replay_source', MACHINE_ID_PATTERN)
  if (source !== undefined) out.replaySource = source
  const reason = validField(fields, 'reason', REASON)
  if (reason !== undefined) out.reason = reason
  const elapsed = validField(fields, 'elapsed_ms', NUMBER)
  if (elapsed !== undefined) out.elapsedMs = Number(elapsed)
  return out
}
