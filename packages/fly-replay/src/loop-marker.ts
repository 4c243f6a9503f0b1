// Navigator's loop marker. Fly's replays are marked by Fly (`fly-replay-src`, with our `state`); a request that
// Navigator itself proxies to another Machine (a body too large to replay) bypasses Fly, so Navigator marks it: the
// request carries this header, naming the Machine that proxied it. Every step that could send a request on to
// another Machine (replay rules, sticky sessions) treats a marked request as having had its one hop: it is served
// where it arrived, or answered with the maintenance page. A client can send the header itself; all it gains is
// that its own request is not sent on, which is no more than it could get by leaving out its cookie.

/** The request header on every request Navigator proxies to another Machine; its value is that Machine's ID. */
export const NAVIGATOR_VIA_HEADER = 'x-navigator-via'

/** The marker's value for a Navigator without a Machine ID (outside Fly, without FLY_MACHINE_ID). */
export const UNIDENTIFIED_MACHINE = '-'

// Requests a `routes.fly.replay` rule keeps on this Machine because the rule names this Machine (a `machine` target).
// The rule has routed them here as surely as a replay would have: sticky sessions serve them here too rather than send
// them to the cookie's Machine, whose own copy of the rule would send them straight back (or, for a body too large to
// replay, answer with the maintenance page, since the request would already have had its one hop).
const routedHere = new WeakSet<object>()

/** Marks a request (its Node request object) as kept here by a replay rule that names this Machine. */
export function markRoutedHere (req: object): void {
  routedHere.add(req)
}

/** True when a replay rule that names this Machine matched the request (markRoutedHere). */
export function isRoutedHere (req: object): boolean {
  return routedHere.has(req)
}
