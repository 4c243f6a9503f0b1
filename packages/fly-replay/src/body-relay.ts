import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'

export function hasBody (headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true
  const length = headers['content-length']
  return length !== undefined && length !== '0'
}

export function bodyStream (request: FastifyRequest): Readable {
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
export class BodyRelay extends Readable {
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

