import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { RequestContext } from './request-context.js'

/** Called with the size of every relayed body chunk. */
export type BodyAccounting = (bytes: number) => void

/**
 * An accounting that runs a minor garbage collection every `everyBytes` of request body relayed (all requests of
 * one proxy together). Relayed chunks are large (up to 64 KiB each, held outside the JavaScript heap) and die at
 * once, but the few small objects each one leaves in the young generation fill it slowly, so without a nudge dead
 * chunks pile up towards V8's external-memory limit (about 64 MiB) before anything frees them. A scavenge of a
 * young generation of short-lived objects takes well under a millisecond, about 1% of the time 16 MiB take to
 * relay. `gc` comes from a throw-away context: the flag is on only while that context is made, so no global `gc`
 * appears anywhere.
 */
export function minorCollectionEvery (everyBytes: number): BodyAccounting {
  setFlagsFromString('--expose-gc')
  const collect = runInNewContext('gc') as (options: { type: 'minor', execution: 'sync' }) => void
  setFlagsFromString('--no-expose-gc')
  let since = 0
  return (bytes) => {
    since += bytes
    if (since >= everyBytes) {
      since = 0
      collect({ type: 'minor', execution: 'sync' })
    }
  }
}

export function hasBody (headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true
  const length = headers['content-length']
  return length !== undefined && length !== '0'
}

export function bodyStream (ctx: RequestContext): Readable {
  // A route with a pass-through content-type parser hands the (possibly decoded) payload stream over as the body.
  const body = ctx.request?.body as { pipe?: unknown } | undefined
  if (body !== null && typeof body === 'object' && typeof body.pipe === 'function') return body as unknown as Readable
  return ctx.req
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
  /**
   * Since when (ms since the epoch) the upstream has not taken the next chunk: set when the relay's buffer fills,
   * cleared when undici asks for more; 0 while it keeps up. A client that is slow to send never sets it.
   */
  stalledSince = 0
  private readonly onData = (chunk: Buffer): void => {
    if (this.accounting !== null) this.accounting(chunk.length)
    if (!this.push(chunk)) {
      this.source.pause()
      this.stalledSince = Date.now()
    }
  }

  private readonly onEnd = (): void => { this.push(null) }
  private readonly onError = (err: Error): void => { this.destroy(err) }

  constructor (private readonly source: Readable, private readonly accounting: BodyAccounting | null = null) {
    super()
  }

  override _read (): void {
    this.stalledSince = 0
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
    // A relay that never read leaves the request alone: a fallback may be reading it by now.
    if (this.started) this.source.pause()
    callback(err)
  }
}
