import type { IncomingHttpHeaders } from 'node:http'
import { isReplayable, NAVIGATOR_STATE_PREFIX, NAVIGATOR_VIA_HEADER, parseReplaySrc } from '@navigator/fly-replay'
import type { CookieCodec, CookieRejection } from './cookie.js'
import type { MachineDiscovery } from './discovery.js'

// The sticky-session decision, as a pure function of the request: what to do with a request on a sticky path. The step
// applies the answer (and the fallback mode); nothing here touches a reply or a logger.

/**
 * The loop marker of Navigator releases before `x-navigator-via`, still set by a Machine that runs one during a
 * rolling deploy: its direct proxy landed on a Machine that is not the cookie's, which is taken as that Machine
 * being unavailable (the fallback), as those releases did.
 */
export const LEGACY_PROXIED_HEADER = 'x-navigator-sticky-proxied'

/** Set by Fly on a request it could not deliver to the Machine of a `prefer_instance` replay (replay cache on). */
export const PREFERRED_UNAVAILABLE_HEADER = 'fly-preferred-instance-unavailable'

export type DecisionKind =
  /** No cookie: serve here and set the cookie to this Machine. */
  | 'new'
  /** The cookie names this Machine: serve here and set it again (sliding expiry). */
  | 'own'
  /** The cookie was rejected (`rejection` says why): serve here and set the cookie to this Machine. */
  | 'rejected'
  /** The cookie names another Machine and the request can be replayed: answer with fly-replay. */
  | 'replay'
  /** The cookie names another Machine and the body is too large or of unknown length: proxy it there. */
  | 'proxy'
  /**
   * The cookie names another Machine that is known to be unavailable (fly-replay-failed, or
   * fly-preferred-instance-unavailable after a prefer_instance replay), or the request already went through this
   * feature once and still did not reach it: apply the fallback mode.
   */
  | 'unavailable'
  /**
   * The cookie names another Machine, but another part of Navigator sent this request here already: a
   * `routes.fly.replay` rule replayed it (its `state` also starts with `nav-`), or a Machine proxied it here
   * (`x-navigator-via`); or (decided by the step) a replay rule that names this Machine matched it. That
   * routing stands, so the request is served here and the cookie is left as it is.
   * Sending it on again could bounce it between the two for ever.
   */
  | 'routed'

export interface Decision {
  kind: DecisionKind
  /** The Machine the cookie names (for new, own and rejected: this Machine). */
  machine: string
  rejection: CookieRejection | null
}

export interface DecisionContext {
  machineId: string
  codec: CookieCodec
  discovery: MachineDiscovery
  /** The `state` of our replays, recognised in `fly-replay-src` when a replayed request comes back. */
  replayState: string
  /** Largest body (Content-Length, bytes) that is replayed rather than proxied. */
  maxReplayBody: number
}

export interface Decider {
  /** `value` is the cookie's, or, without a cookie, the sticky header's (`headerName`); undefined when neither came. */
  (value: string | undefined, headers: IncomingHttpHeaders): Decision
}

/** Builds the decision function for one Machine; the answers for this Machine are allocated once. */
export function createDecider (context: DecisionContext): Decider {
  const { machineId, codec, discovery, replayState, maxReplayBody } = context
  const NEW: Decision = Object.freeze({ kind: 'new', machine: machineId, rejection: null })
  const OWN: Decision = Object.freeze({ kind: 'own', machine: machineId, rejection: null })
  const ownValue = codec.encode(machineId)

  return function decide (value, headers) {
    if (value === undefined) return NEW
    // The value this Machine hands out to every visitor; comparing it directly reveals nothing secret.
    if (value === ownValue) return OWN
    const target = codec.decode(value)
    if (target === null) return { kind: 'rejected', machine: machineId, rejection: codec.rejection(value) }
    if (target === machineId) return OWN
    if (discovery.has(target) === false) return { kind: 'rejected', machine: machineId, rejection: 'machine-unknown' }
    // Loop freedom: a request this feature replayed already, that still did not reach its Machine, is not replayed
    // again; neither is one that another part of Navigator replayed or proxied here.
    const source = headers['fly-replay-src']
    const replayedAs = source === undefined ? undefined : parseReplaySrc(source)?.state
    if (headers['fly-replay-failed'] !== undefined || headers[PREFERRED_UNAVAILABLE_HEADER] !== undefined ||
        headers[LEGACY_PROXIED_HEADER] !== undefined || replayedAs === replayState) {
      return { kind: 'unavailable', machine: target, rejection: null }
    }
    if (headers[NAVIGATOR_VIA_HEADER] !== undefined || replayedAs?.startsWith(NAVIGATOR_STATE_PREFIX) === true) {
      return { kind: 'routed', machine: target, rejection: null }
    }
    return { kind: isReplayable(headers, maxReplayBody) ? 'replay' : 'proxy', machine: target, rejection: null }
  }
}
