import type { ListenAddress } from './types.js'

/**
 * Host used when `server.listen` gives only a port. "::" accepts IPv6 and IPv4 on Linux, which Fly needs:
 * the public proxy connects over IPv4 and peer Machines connect over the 6PN private IPv6 network.
 */
export const DEFAULT_LISTEN_HOST = '::'
export const DEFAULT_LISTEN_PORT = 3000

function parsePort (text: string, original: unknown): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new TypeError(`${JSON.stringify(original)} is not a listen address: the port must be 0 to 65535`)
  }
  return Number(text)
}

/**
 * Parses `server.listen`: a port (3000 or "3000"), ":port", "host:port" or "[ipv6]:port".
 * Throws a TypeError with the reason for anything else.
 */
export function parseListen (value: number | string): ListenAddress {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 65535) {
      throw new TypeError(`${value} is not a listen address: the port must be an integer from 0 to 65535`)
    }
    return { host: DEFAULT_LISTEN_HOST, port: value }
  }
  if (typeof value !== 'string') {
    throw new TypeError('a listen address must be a port number or a "host:port" string')
  }
  const text = value.trim()
  if (/^\d+$/.test(text)) return { host: DEFAULT_LISTEN_HOST, port: parsePort(text, value) }
  const bracketed = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(text)
  if (bracketed) return { host: bracketed[1], port: parsePort(bracketed[2], value) }
  const colon = text.lastIndexOf(':')
  if (colon === -1) {
    throw new TypeError(`${JSON.stringify(value)} is not a listen address: use a port, ":port" or "host:port"`)
  }
  const host = text.slice(0, colon)
  const port = parsePort(text.slice(colon + 1), value)
  if (host === '') return { host: DEFAULT_LISTEN_HOST, port }
  if (!/^[A-Za-z0-9.-]+$/.test(host)) {
    throw new TypeError(`${JSON.stringify(value)} is not a listen address: bad host ${JSON.stringify(host)} (write IPv6 hosts in brackets)`)
  }
  return { host, port }
}
