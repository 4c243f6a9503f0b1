import { NAVIGATOR_VIA_HEADER } from '@navigator/fly-replay'
import type { ResolvedOptions } from './options.js'

// Where a body too large to replay goes. Fly cannot replay it, so Navigator proxies it to the cookie's Machine itself:
// - vm: to the Machine's private address, `http://<id>.vm.<app>.internal:<port>` (or its `peers` URL). That is a
//   straight connection over Fly's private network: a stopped or suspended Machine has no address there, and
//   nothing wakes it.
// - flycast: to the app's Flycast address with `fly-force-instance-id: <id>`. That goes through Fly's proxy, which
//   starts the Machine when it is asleep and delivers to it or to nobody (the header has no fallback).
// Either way the request carries `x-navigator-via: <this Machine>`, so that whoever receives it never sends it on.

/** The upstream of one direct proxy: an origin and the request headers to add. */
export interface DirectRoute {
  origin: string
  headers: Readonly<Record<string, string>>
}

/** The route to a Machine, or null when it has no address (no app name outside `peers`). */
export type DirectRouter = (target: string) => DirectRoute | null

/** The Flycast origin the options give, or null when there is none (no flycastUrl and no app name). */
export function flycastOrigin (options: ResolvedOptions): string | null {
  if (options.flycastUrl !== null) return options.flycastUrl
  return options.appName === null ? null : `http://${options.appName}.flycast:${options.flycastPort}`
}

/** Builds the router of `options.directProxy` for this Machine; everything that does not depend on the target is made once. */
export function createDirectRouter (options: ResolvedOptions, machineId: string): DirectRouter {
  if (options.directProxy === 'flycast') {
    const origin = flycastOrigin(options)
    if (origin === null) return () => null
    return (target) => ({ origin, headers: { [NAVIGATOR_VIA_HEADER]: machineId, 'fly-force-instance-id': target } })
  }
  const marked = Object.freeze({ [NAVIGATOR_VIA_HEADER]: machineId })
  const { peers, appName, port } = options
  return (target) => {
    const origin = peers.get(target) ?? (appName === null ? null : `http://${target}.vm.${appName}.internal:${port}`)
    return origin === null ? null : { origin, headers: marked }
  }
}
