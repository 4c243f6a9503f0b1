import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { Pool } from 'undici'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { InvalidOptionError, UpstreamTimeoutError, UpstreamUnreachableError } from './errors.js'

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000
export const DEFAULT_HEADERS_TIMEOUT_MS = 60_000
export const DEFAULT_BODY_TIMEOUT_MS = 300_000

export interface UpstreamProxyOptions {
  /** Time allowed to open the TCP connection; failing counts as unreachable (502 or onUnreachable). */
  connectTimeoutMs?: number
  /** Time allowed between sending the request and receiving the response headers; exceeding it answers 504. */
  headersTimeoutMs?: number
  /** Time allowed between two chunks of the response body. */
  bodyTimeoutMs?: number
  /** Maximum connections per upstream origin; undefined = unlimited. */
  connections?: number
}

export interface UpstreamTarget {
  /** `http://host:port`, without a path. */
  origin: string
  /** Path and query to request; defaults to the incoming request's URL. */
  path?: string
}

export interface ForwardOptions {
  /**
   * Called instead of answering 502 when the upstream could not be reached and no byte of the request body was
   * consumed, so the caller can still answer the request another way (sticky fallback, maintenance page).
   */
  onUnreachable?: (err: Error) => unknown
  /** Extra request headers for the upstream (replacing any of the same name). */
  headers?: Readonly<Record<string, string>>
}

export interface UpstreamProxy {
  forward (request: FastifyRequest, reply: FastifyReply, target: UpstreamTarget, options?: ForwardOptions): Promise<void>
  close (): Promise<void>
}

// Hop-by-hop headers (RFC 9110 section 7.6.1) describe one connection and must not be forwarded; `expect` is
// answered by Node's server already, and undici refuses it.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect'
])

function isHopByHop (name: string): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-')
}

function connectionTokens (value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null
  const text = Array.isArray(value) ? value.join(',') : value
  const tokens = new Set<string>()
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '' && name !== 'close' && name !== 'keep-alive') tokens.add(name)
  }
  return tokens.size === 0 ? null : tokens
}

function checkTimeout (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value <= 0) throw new InvalidOptionError(name, 'must be a positive number of milliseconds')
  return value
}

function hasBody (headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true
  const length = headers['content-length']
  return length !== undefined && length !== '0'
}

function bodyStream (request: FastifyRequest): Readable {
  // A route with a pass-through content-type parser hands the (possibly decoded) payload stream over as the body.
  const body = request.body as { pipe?: unknown } | undefined
  if (body !== null && typeof body === 'object' && typeof body.pipe === 'function') return body as unknown as Readable
  return request.raw
}

/**
 * The request body as undici sees it: a stream that starts reading the client's request only when undici asks for
 * the first chunk, that is once the upstream connection is made. Two reasons:
 * - undici destroys the body it was given when the connection fails, and destroying the client's request would
 *   close its socket: the onUnreachable fallback would have nothing left to answer on;
 * - when the upstream answers before reading everything, the relay stops without destroying the request, and
 *   `forward` drains the rest, as Node does for an unread body (a destroyed request leaves its socket paused with
 *   unread bytes, and the connection hangs until a server timeout).
 * `started` says whether any body byte may have left.
 */
class BodyRelay extends Readable {
  started = false
  private readonly onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.source.pause()
  }

  private readonly onEnd = (): void => { this.push(null) }
  private readonly onError = (err: Error): void => { this.destroy(err) }

  constructor (private readonly source: Readable) {
    super()
  }

  override _read (): void {
    if (!this.started) {
      this.started = true
      this.source.on('data', this.onData)
      this.source.once('end', this.onEnd)
      this.source.once('error', this.onError)
      this.source.once('aborted', this.onError)
    }
    this.source.resume()
  }

  override _destroy (err: Error | null, callback: (error?: Error | null) => void): void {
    this.source.removeListener('data', this.onData)
    this.source.removeListener('end', this.onEnd)
    this.source.removeListener('error', this.onError)
    this.source.removeListener('aborted', this.onError)
    this.source.pause()
    callback(err)
  }
}

function upstreamHeaders (request: FastifyRequest, extra: Readonly<Record<string, string>> | undefined): Record<string, string | string[]> {
  const incoming = request.raw.headers
  const dropped = connectionTokens(incoming.connection)
  const headers: Record<string, string | string[]> = {}
  for (const name in incoming) {
    if (isHopByHop(name) || (dropped !== null && dropped.has(name))) continue
    const value = incoming[name]
    if (value !== undefined) headers[name] = value
  }
  const clientAddress = request.raw.socket.remoteAddress ?? ''
  const forwardedFor = incoming['x-forwarded-for']
  headers['x-forwarded-for'] = forwardedFor === undefined || forwardedFor === ''
    ? clientAddress
    : `${Array.isArray(forwardedFor) ? forwardedFor.join(', ') : forwardedFor}, ${clientAddress}`
  // Fly's edge terminates TLS and sets X-Forwarded-Proto (and the Host the client used); those values are what the
  // app must see, so existing ones pass through and only missing ones are filled in from this hop.
  if (incoming['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = request.protocol
  if (incoming['x-forwarded-host'] === undefined && incoming.host !== undefined) headers['x-forwarded-host'] = incoming.host
  if (incoming['x-request-id'] === undefined) headers['x-request-id'] = randomUUID()
  if (extra !== undefined) {
    for (const name in extra) headers[name.toLowerCase()] = extra[name]
  }
  return headers
}

function errorCode (err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code
}

export function createUpstreamProxy (options: UpstreamProxyOptions = {}): UpstreamProxy {
  const connectTimeout = checkTimeout('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS)
  const headersTimeout = checkTimeout('headersTimeoutMs', options.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS)
  const bodyTimeout = checkTimeout('bodyTimeoutMs', options.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS)
  const connections = options.connections
  if (connections !== undefined && (!Number.isInteger(connections) || connections < 1)) {
    throw new InvalidOptionError('connections', 'must be a positive integer')
  }

  const pools = new Map<string, Pool>()
  let closed = false

  function poolFor (origin: string): Pool {
    let pool = pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, { connectTimeout, headersTimeout, bodyTimeout, connections: connections ?? null })
      pools.set(origin, pool)
    }
    return pool
  }

  async function forward (
    request: FastifyRequest,
    reply: FastifyReply,
    target: UpstreamTarget,
    forwardOptions?: ForwardOptions
  ): Promise<void> {
    const raw = request.raw
    const res = reply.raw
    const body = hasBody(raw.headers) ? new BodyRelay(bodyStream(request)) : null
    const abort = new AbortController()
    // Once the client's response is closed (finished or abandoned) nothing more is owed upstream. If the upstream
    // answered before reading the whole body, the rest is read and discarded, as Node does for an unread body, so
    // the client connection can be reused or closed.
    const onResponseClosed = (): void => {
      abort.abort()
      if (body !== null && !raw.complete && !raw.destroyed) raw.resume()
    }
    res.once('close', onResponseClosed)

    let response
    try {
      if (closed) throw new UpstreamUnreachableError()
      response = await poolFor(target.origin).request({
        method: raw.method as 'GET',
        path: target.path ?? raw.url ?? '/',
        headers: upstreamHeaders(request, forwardOptions?.headers),
        body,
        signal: abort.signal
      })
    } catch (err) {
      if (abort.signal.aborted || res.destroyed) {
        // The client went away; the upstream request is aborted and there is nobody to answer.
        return
      }
      const code = errorCode(err)
      if (code === 'UND_ERR_HEADERS_TIMEOUT') {
        request.log.warn({ upstream: target.origin }, 'upstream did not answer in time')
        reply.send(new UpstreamTimeoutError())
        return
      }
      const bodyUntouched = body === null || !body.started
      if (forwardOptions?.onUnreachable !== undefined && bodyUntouched) {
        // The caller answers, and may still read the body (serving the request here).
        res.removeListener('close', onResponseClosed)
        await forwardOptions.onUnreachable(err as Error)
        return
      }
      request.log.warn({ upstream: target.origin, code }, 'upstream could not be reached')
      reply.send(new UpstreamUnreachableError())
      return
    }

    const headers = response.headers
    const dropped = connectionTokens(headers.connection)
    reply.code(response.statusCode)
    for (const name in headers) {
      if (isHopByHop(name) || (dropped !== null && dropped.has(name))) continue
      const value = headers[name]
      if (value === undefined) continue
      if (name === 'set-cookie') {
        // Fastify appends each set-cookie value, keeping any cookie a hook already set on this reply.
        if (Array.isArray(value)) for (const cookie of value) reply.header('set-cookie', cookie)
        else reply.header('set-cookie', value)
      } else {
        reply.header(name, value)
      }
    }
    reply.send(response.body)
  }

  async function close (): Promise<void> {
    closed = true
    const all = [...pools.values()]
    pools.clear()
    await Promise.all(all.map(async (pool) => await pool.close()))
  }

  return { forward, close }
}
