import type { IncomingMessage } from 'node:http'
import type { NavigatorConfig } from '@navigator/config'

// server.trust_proxy: whether the X-Forwarded-For, -Proto and -Host a peer sends are believed. One answer for the
// whole server: the headers the apps get (@navigator/proxy's trustForwarded), Fastify's request.ip, `$remote_addr`,
// `$scheme` and `$host` of reverse proxy headers, and the host server.hostname is compared with.

/** server.trust_proxy when given; absent, true on a Fly Machine (every request comes through Fly's proxy or a peer). */
export function trustsForwarded (config: NavigatorConfig, identity: { machineId: string | null }): boolean {
  return config.server.trustProxy ?? identity.machineId !== null
}

/** The first value of a header a proxy may have written as a list ("a, b") or repeated. */
function firstOf (value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined) return undefined
  const comma = text.indexOf(',')
  const first = (comma === -1 ? text : text.slice(0, comma)).trim()
  return first === '' ? undefined : first
}

/** The client's address: the first of X-Forwarded-For when trusted (the client the first proxy saw), else the peer's. */
export function clientAddress (req: IncomingMessage, trusted: boolean): string {
  const forwarded = trusted ? firstOf(req.headers['x-forwarded-for']) : undefined
  return forwarded ?? req.socket.remoteAddress ?? ''
}

/** `https` or `http`: the first of X-Forwarded-Proto when trusted, else that of this connection. */
export function clientScheme (req: IncomingMessage, trusted: boolean): string {
  const forwarded = trusted ? firstOf(req.headers['x-forwarded-proto'])?.toLowerCase() : undefined
  if (forwarded === 'https' || forwarded === 'http') return forwarded
  return 'encrypted' in req.socket ? 'https' : 'http'
}

/** The host the client asked for: the first of X-Forwarded-Host when trusted, else the Host header. */
export function requestHost (req: IncomingMessage, trusted: boolean): string | undefined {
  return (trusted ? firstOf(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host
}
