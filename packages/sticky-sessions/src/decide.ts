import type { IncomingHttpHeaders } from 'node:http'
import { isReplayable, NAVIGATOR_STATE_PREFIX, parseReplaySrc } from '@navigator/fly-replay'
import type { CookieCodec, CookieRejection } from './cookie.js'
import type { MachineDiscovery } from './discovery.js'

// The sticky-session decision, as a pure function of the request: what to do with a request on a sticky path. The step
// applies the answer (and the fallback mode); nothing here touches a reply or a logger.

/**
 * Set on requests this feature proxies directly to another Machine. One that arrives with it and still names
 * another Machine (a wrong peer address, say) is not proxied a second time.
 */
export const PROXIED_HEADER = 'x-navigator-sticky-proxied'

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
   * The cookie names another Machine that is known to be unavailable (fly-replay-failed), or the request already
   * went through this feature once and still did not reach it: apply the fallback mode.
   */
  | 'unavailable'
  /**
   * The cookie names another Machine, but another part of Navigator replayed this request here already (a
   * `routes.fly.replay` rule, whose `state` also starts with `nav-`): that routing stands, so the request is served
   * here and the cookie is left as it is. Replaying it again could bounce it between the two for ever.
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
}

export interface Decider {
  (cookieValue: string | undefined, headers: IncomingHttpHeaders): Decision
}

/** Builds the decision function for one Machine; the answers for this Machine are allocated once. */
export function createDecider (context: DecisionContext): Decider {
  const { machineId, codec, discovery, replayState } = context
  const NEW: Decision = Object.freeze({ kind: 'new', machine: machineId, rejection: null })
  const OWN: Decision = Object.freeze({ kind: 'own', machine: machineId, rejection: null })
  const ownValue = codec.encode(machineId)

  return function decide (cookieValue, headers) {
    if (cookieValue === undefined) return NEW
    // The value this Machine hands out to every visitor; comparing it directly reveals nothing secret.
    if (cookieValue === ownValue) return OWN
    const target = codec.decode(cookieValue)
    if (target === null) return { kind: 'rejected', machine: machineId, rejection: codec.rejection(cookieValue) }
    if (target === machineId) return OWN
    if (discovery.has(target) === false) return { kind: 'rejected', machine: machineId, rejection: 'machine-unknown' }
    // Loop freedom: a request this feature replayed already, that still did not reach its Machine, is not replayed
    // again; neither is one that another part of Navigator replayed here.
    const source = headers['fly-replay-src']
    const replayedAs = source === undefined ? undefined : parseReplaySrc(source)?.state
    if (headers['fly-replay-failed'] !== undefined || headers[PROXIED_HEADER] !== undefined || replayedAs === replayState) {
      return { kind: 'unavailable', machine: target, rejection: null }
    }
    if (replayedAs?.startsWith(NAVIGATOR_STATE_PREFIX) === true) return { kind: 'routed', machine: target, rejection: null }
    return { kind: isReplayable(headers) ? 'replay' : 'proxy', machine: target, rejection: null }
  }
}
