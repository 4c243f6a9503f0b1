import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

// The header lists of the upstream proxy, built as flat [name, value, name, value, ...] arrays: the form undici takes
// for a request and Node's writeHead takes for a response, so no object is built per request, and repeated headers
// (Set-Cookie) stay separate.

/**
 * Hop-by-hop headers (RFC 9110 section 7.6.1) describe one connection and are not forwarded; `expect` is answered by
 * Node's server already, and undici refuses it. `name` must be lower case. Checked by length first: most names are
 * rejected without a string comparison.
 */
export function isHopByHop (name: string): boolean {
  if (name.length >= 6 && name.charCodeAt(0) === 112 /* p */ && name.startsWith('proxy-')) return true
  switch (name.length) {
    case 2: return name === 'te'
    case 6: return name === 'expect'
    case 7: return name === 'upgrade' || name === 'trailer'
    case 10: return name === 'connection' || name === 'keep-alive'
    case 17: return name === 'transfer-encoding'
    default: return false
  }
}

/** The header names a Connection header declares hop-by-hop, lower case; null for none (the common case). */
export function connectionTokens (value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null
  const text = Array.isArray(value) ? value.join(',') : value
  // "keep-alive" and "close", in any case, name no header: the usual values cost no split.
  if (text.length <= 10) {
    const lower = text.toLowerCase()
    if (lower === 'keep-alive' || lower === 'close' || lower === '') return null
  }
  const tokens = new Set<string>()
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '' && name !== 'close' && name !== 'keep-alive') tokens.add(name)
  }
  return tokens.size === 0 ? null : tokens
}

function lowerCaseNames (extra: Readonly<Record<string, string>>): Set<string> {
  const names = new Set<string>()
  for (const name in extra) names.add(name.toLowerCase())
  return names
}

/**
 * The request headers for the upstream: the client's, without hop-by-hop ones, plus X-Forwarded-For, -Proto and
 * -Host, X-Request-Id when absent, and `extra` (replacing any of the same name).
 *
 * With `trustForwarded` (the peer is a trusted edge, such as Fly's, which terminates TLS and whose values are what the
 * app must see) the peer's X-Forwarded-Proto and -Host are kept and this peer is appended to its X-Forwarded-For.
 * Without it (the default) any X-Forwarded-* the client sent is discarded: X-Forwarded-For is the socket's address,
 * -Proto that of this connection, -Host the Host header.
 */
export function upstreamRequestHeaders (
  raw: IncomingMessage,
  extra: Readonly<Record<string, string>> | undefined,
  trustForwarded = false
): string[] {
  const incoming = raw.headers
  const dropped = connectionTokens(incoming.connection)
  const replaced = extra === undefined ? null : lowerCaseNames(extra)
  const out: string[] = []
  let forwardedFor: string | undefined
  let hasProto = false
  let hasHost = false
  let hasRequestId = false
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined || isHopByHop(name) || (dropped !== null && dropped.has(name)) || (replaced !== null && replaced.has(name))) continue
    if (name.charCodeAt(0) === 120 /* x */) {
      if (name === 'x-forwarded-for') {
        if (trustForwarded) forwardedFor = Array.isArray(value) ? value.join(', ') : value
        continue
      }
      if (name === 'x-forwarded-proto') {
        if (!trustForwarded) continue
        hasProto = true
      } else if (name === 'x-forwarded-host') {
        if (!trustForwarded) continue
        hasHost = true
      } else if (name === 'x-request-id') hasRequestId = true
    }
    if (typeof value === 'string') {
      out.push(name, value)
    } else {
      for (const each of value) out.push(name, each)
    }
  }
  const socket = raw.socket as (IncomingMessage['socket'] & { encrypted?: boolean }) | null
  const clientAddress = socket?.remoteAddress ?? ''
  out.push('x-forwarded-for', forwardedFor === undefined || forwardedFor === '' ? clientAddress : `${forwardedFor}, ${clientAddress}`)
  if (!hasProto) out.push('x-forwarded-proto', socket?.encrypted === true ? 'https' : 'http')
  if (!hasHost && incoming.host !== undefined) out.push('x-forwarded-host', incoming.host)
  if (!hasRequestId) out.push('x-request-id', randomUUID())
  if (extra !== undefined) {
    for (const name in extra) out.push(name.toLowerCase(), extra[name])
  }
  return out
}

/**
 * The response headers for the client: `own` (set on the reply by earlier hooks: the sticky cookie) and the
 * upstream's raw headers without hop-by-hop ones. Set-Cookie values of both are kept, each separate, the hooks'
 * first; for any other name the upstream's value wins, as it would with reply.header().
 */
export function clientResponseHeaders (rawHeaders: Buffer[], own: Record<string, unknown>): string[] {
  const out: string[] = []
  let others: string[] | null = null
  for (const name in own) {
    const value = own[name]
    if (value === undefined) continue
    if (name === 'set-cookie') {
      if (Array.isArray(value)) for (const cookie of value) out.push(name, String(cookie))
      else out.push(name, String(value))
    } else {
      others ??= []
      others.push(name, Array.isArray(value) ? value.join(', ') : String(value))
    }
  }
  let dropped: Set<string> | null = null
  const start = out.length
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toString('latin1')
    const value = rawHeaders[i + 1].toString('latin1')
    const length = name.length
    // Lower-cased only when the length is that of a name that needs a look.
    if (length === 2 || length === 6 || length === 7 || length === 10 || length === 17 || (length >= 6 && (name.charCodeAt(0) | 32) === 112 /* p */)) {
      const lower = name.toLowerCase()
      if (isHopByHop(lower)) {
        if (lower === 'connection') dropped = connectionTokens(value)
        continue
      }
    }
    out.push(name, value)
  }
  if (dropped !== null) removeNamed(out, start, dropped)
  if (others !== null) {
    for (let i = 0; i < others.length; i += 2) {
      if (!hasName(out, start, others[i])) out.push(others[i], others[i + 1])
    }
  }
  return out
}

function removeNamed (headers: string[], start: number, names: Set<string>): void {
  let kept = start
  for (let i = start; i < headers.length; i += 2) {
    if (names.has(headers[i].toLowerCase())) continue
    headers[kept++] = headers[i]
    headers[kept++] = headers[i + 1]
  }
  headers.length = kept
}

function hasName (headers: string[], start: number, lowerName: string): boolean {
  for (let i = start; i < headers.length; i += 2) {
    if (headers[i].length === lowerName.length && headers[i].toLowerCase() === lowerName) return true
  }
  return false
}
