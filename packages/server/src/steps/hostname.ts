import { ANSWERED, answer, NEXT, type RequestContext, type Step } from '@navigator/proxy'
import { requestHost } from '../forwarded.js'
import type { StepOptions } from './index.js'

const HEADERS = Object.freeze(['content-type', 'text/plain; charset=utf-8'])
/** RFC 9110 section 15.5.20: this server will not answer for the host the request names. */
const MISDIRECTED = 421
/** `localhost` is the loopback addresses (RFC 6761): a client that asks for one of them asks for it. */
const LOOPBACK = ['localhost', '127.0.0.1', '[::1]']
/** The refused hosts are named in a warning once each, for so many hosts at most. */
const WARNED_HOSTS = 20

/**
 * `server.hostname`: a request whose Host names another host (its name compared without the port or a final dot, in
 * any case; X-Forwarded-Host when X-Forwarded-* are trusted), or names none, is answered 421 Misdirected Request,
 * WebSocket upgrades included. It stands after Navigator's own paths (the health check, the metrics, the status page,
 * the apps' broadcasts), which a platform or an app asks for by address, and before everything the site serves. The
 * first refusals of each host are logged at warn: a hostname set to another name than the site's refuses everything.
 */
export function hostname ({ config, trustForwarded }: StepOptions): Step | null {
  const name = config.server.hostname
  if (name === null) return null
  const names = name === 'localhost' ? LOOPBACK : [name]
  const trusted = trustForwarded
  const warned = new Set<string>()
  const refuse = (ctx: RequestContext, host: string | null): void => {
    if (host !== null && !warned.has(host) && warned.size < WARNED_HOSTS) {
      warned.add(host)
      ctx.log.warn({ host, hostname: name }, 'a request for another host than server.hostname was answered 421')
    }
    answer(ctx, MISDIRECTED, HEADERS, 'Misdirected Request\n')
  }
  return {
    name: 'hostname',
    run (ctx) {
      const host = hostNameOf(requestHost(ctx.req, trusted))
      if (host !== null && names.includes(host)) return NEXT
      refuse(ctx, host === null ? null : host.slice(0, 255))
      return ANSWERED
    }
  }
}

/** The name of a Host value, in lower case, without the port and a final dot ("Example.com.:8080" is "example.com"). */
function hostNameOf (host: string | undefined): string | null {
  if (host === undefined || host === '') return null
  let end = host.length
  const colon = host.lastIndexOf(':')
  // A port follows the last colon, unless it is inside an IPv6 literal ("[::1]" has none).
  if (colon !== -1 && colon > host.lastIndexOf(']')) end = colon
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--
  return host.slice(0, end).toLowerCase()
}
