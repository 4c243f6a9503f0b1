import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { answerError } from './answer.js'
import type { BodyRelay } from './body-relay.js'
import { compressionFor, createEncoder, flushEncoder, type ContentEncoding, type Encoder } from './compress.js'
import { UpstreamTimeoutError, UpstreamUnreachableError } from './errors.js'
import { clientResponseHeaders } from './proxy-headers.js'
import type { ForwardOptions, UpstreamFailure } from './proxy.js'
import type { RequestContext } from './request-context.js'

// One proxied request, as an undici dispatch handler (the callback API: no Readable, no promise, no AbortController
// per request). The upstream's response goes straight to the client's ServerResponse: its headers (with those hooks
// set on the reply, the sticky cookie among them) in one writeHead, its body chunk by chunk with backpressure both
// ways. Until the upstream's headers arrive, Fastify still owns the reply, so a 502, a 504 or the caller's fallback
// are ordinary Fastify answers; once they arrive the reply is hijacked. onResponse hooks and the server's own
// accounting still see the response finish and close.
//
// Without a Fastify reply (a request a server's raw path runs), the response headers to add are those the context
// kept, and a 502 or 504 is written as Fastify's default error handler writes it.

const kExchange = Symbol('navigator.upstreamExchange')
const NO_HEADERS: Readonly<Record<string, unknown>> = Object.freeze({})
type Response = ServerResponse & { [kExchange]?: Exchange }
type ExchangeEncoder = Encoder & { [kExchange]?: Exchange }

/** Listeners shared by every exchange (no closure per request): `this` is the client's response, or its encoder. */
function onClientClose (this: Response): void {
  this[kExchange]?.clientClosed()
}

function onClientDrain (this: Response | ExchangeEncoder): void {
  this[kExchange]?.clientDrained()
}

function onEncoderError (this: ExchangeEncoder, err: Error): void {
  this[kExchange]?.encoderFailed(err)
}

function hasContentLength (rawHeaders: Buffer[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].length === 14 && rawHeaders[i].toString('latin1').toLowerCase() === 'content-length') return true
  }
  return false
}

function errorCode (err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code
}

function clientGoneError (): Error {
  return Object.assign(new Error('The client closed the connection'), { code: 'NAV_PROXY_CLIENT_GONE' })
}

/** The code of the error that ends an exchange whose upstream took no request body byte for too long. */
const WRITE_TIMEOUT_CODE = 'NAV_PROXY_WRITE_TIMEOUT'
/** The code of the error that ends an exchange whose upstream did not take the connection within the write timeout. */
const CONNECT_STALL_CODE = 'NAV_PROXY_CONNECT_STALLED'

/** `settled(err)` ends forward()'s promise: resolved once the answer is under way, rejected when the fallback throws. */
export type Settle = (err?: unknown) => void

function timeoutError (message: string, code: string): Error {
  return Object.assign(new Error(message), { code })
}

/**
 * The upstream timeouts of every exchange of one proxy, without a timer per request: each exchange has a deadline,
 * and one interval looks at the open exchanges every `sweepMs`, so a timeout fires at most `sweepMs` late.
 * undici's own per-request timers (a fresh timer object, and a WeakRef, whenever a connection moves between its
 * headers, body and keep-alive timeouts) outlived a few young-generation collections and were promoted: a full
 * collection every two seconds or so under load, and pauses of several milliseconds in the tail latency. The open
 * exchanges are a list linked through the exchanges themselves: a `Set` of them, added to and deleted from on every
 * request, made V8 promote the requests it had held (a full collection every 1.5 s, measured), where the list
 * allocates nothing.
 */
export class ExchangeTimeouts {
  private head: Exchange | null = null
  private timer: NodeJS.Timeout | null = null
  sweepMs: number

  constructor (readonly headersMs: number, readonly bodyMs: number) {
    this.sweepMs = Math.min(1000, Math.max(10, Math.floor(Math.min(headersMs, bodyMs) / 4)))
  }

  watch (exchange: Exchange): void {
    if (exchange.watched) return
    exchange.watched = true
    exchange.previousWatched = null
    exchange.nextWatched = this.head
    if (this.head !== null) this.head.previousWatched = exchange
    this.head = exchange
    if (this.timer === null) {
      this.timer = setInterval(this.sweep, this.sweepMs)
      this.timer.unref()
    }
  }

  unwatch (exchange: Exchange): void {
    if (!exchange.watched) return
    exchange.watched = false
    const previous = exchange.previousWatched
    const next = exchange.nextWatched
    if (previous === null) this.head = next
    else previous.nextWatched = next
    if (next !== null) next.previousWatched = previous
    exchange.previousWatched = null
    exchange.nextWatched = null
  }

  close (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Sweeps at least every quarter of `limitMs` from now on (a write-progress limit shorter than the other timeouts). */
  sweepWithin (limitMs: number): void {
    const sweepMs = Math.max(10, Math.floor(limitMs / 4))
    if (sweepMs >= this.sweepMs) return
    this.sweepMs = sweepMs
    if (this.timer === null) return
    clearInterval(this.timer)
    this.timer = setInterval(this.sweep, sweepMs)
    this.timer.unref()
  }

  private readonly sweep = (): void => {
    if (this.head === null) return
    const now = Date.now()
    let exchange: Exchange | null = this.head
    while (exchange !== null) {
      const next: Exchange | null = exchange.nextWatched
      if (exchange.overdue(now)) {
        this.unwatch(exchange)
        exchange.timedOut()
      }
      exchange = next
    }
  }
}

export class Exchange {
  private abortUpstream: ((err: Error) => void) | null = null
  private resumeUpstream: (() => void) | null = null
  /** The upstream's headers were written to the client: the reply is hijacked, and failures cut the response. */
  private answering = false
  /** res.end() was called here. */
  private ended = false
  /** Nothing more is written by this exchange: the client went away, or the reply was answered or handed back. */
  private gone = false
  private upstreamDone = false
  private paused = false
  private drainListening = false
  /** Response body bytes still expected (from Content-Length); -1 when unknown (or the body is compressed). */
  private remaining = -1
  /** The compressor between the upstream's body and the client, when the response is compressed. */
  private encoder: ExchangeEncoder | null = null
  private encoding: ContentEncoding = 'gzip'
  /** Flush the encoder after each upstream chunk: a body of unknown length may come in parts over time. */
  private flushEachChunk = false
  /** When the upstream's headers, or its next body chunk, are overdue (ms since the epoch). */
  private deadline = Infinity
  /** How long the upstream may take none of the request body (0 = no limit); `writeStalled` once it did. */
  private readonly writeProgressMs: number
  private writeStalled = false
  /** Links of the list of watched exchanges (ExchangeTimeouts). */
  watched = false
  previousWatched: Exchange | null = null
  nextWatched: Exchange | null = null

  private readonly req: IncomingMessage
  private readonly res: ServerResponse
  /** The Fastify reply that owns `res`; null when Fastify never saw the request. */
  private readonly reply: FastifyReply | null
  private readonly log: FastifyBaseLogger
  private readonly onUnreachable: ((err: Error, ctx: RequestContext) => unknown) | undefined
  private readonly onResponseHeaders: ((elapsedMs: number) => void) | undefined
  private readonly onUpstreamError: ((failure: UpstreamFailure) => void) | undefined
  private readonly compress: boolean
  /** performance.now() when the exchange began; read only with onResponseHeaders. */
  private readonly startedAt: number

  constructor (
    private readonly ctx: RequestContext,
    private readonly origin: string,
    private readonly body: BodyRelay | null,
    options: ForwardOptions | undefined,
    private settled: Settle | null,
    private readonly timeouts: ExchangeTimeouts,
    compressByDefault: boolean
  ) {
    this.onUnreachable = options?.onUnreachable
    this.compress = options?.compress ?? compressByDefault
    this.onResponseHeaders = options?.onResponseHeaders
    this.onUpstreamError = options?.onUpstreamError
    this.startedAt = this.onResponseHeaders === undefined ? 0 : performance.now()
    this.writeProgressMs = options?.writeProgressTimeoutMs ?? 0
    if (this.writeProgressMs > 0) timeouts.sweepWithin(this.writeProgressMs)
    this.req = ctx.req
    this.res = ctx.res
    this.reply = ctx.reply
    this.log = ctx.log
    ;(this.res as Response)[kExchange] = this
    this.res.on('close', onClientClose)
  }

  /**
   * With a write-progress limit, the connection is watched from the start: a host that drops the connection's
   * packets (hung, or its listen queue full) leaves the connect pending for undici's connect timeout, and no byte of
   * the request has left meanwhile, so the caller's fallback can still answer once the limit has passed.
   */
  awaitConnection (): void {
    if (this.writeProgressMs <= 0) return
    this.deadline = Date.now() + this.writeProgressMs
    this.timeouts.watch(this)
  }

  /**
   * Past its deadline. As with undici's own timers: the headers are due `headersMs` after the request (body included)
   * was sent, so the deadline keeps moving while the request body is still being relayed (an upload that takes
   * longer than the timeout is not cut; Node's request timeout bounds a client that trickles it); and the body
   * timeout never fires while the upstream is paused because the client is slow to read. With a write-progress
   * limit, an upstream that takes no body byte for that long is overdue while the body is relayed.
   */
  overdue (now: number): boolean {
    // Not connected yet: only awaitConnection() watches such an exchange.
    if (this.abortUpstream === null) return this.deadline <= now
    if (this.paused) return false
    if (!this.answering && this.body !== null && !this.body.readableEnded) {
      const stalledSince = this.body.stalledSince
      if (this.writeProgressMs > 0 && stalledSince > 0 && now - stalledSince >= this.writeProgressMs) {
        this.writeStalled = true
        return true
      }
      this.deadline = now + this.timeouts.headersMs
      return false
    }
    return this.deadline <= now
  }

  /** The sweep found the deadline passed: 504 before the headers, a cut response after them. */
  timedOut (): void {
    if (this.abortUpstream === null) {
      this.log.warn({ upstream: this.origin, stalledMs: this.writeProgressMs }, 'upstream did not take the connection in time')
      // undici still holds the request: it is aborted when the connection comes (onConnect), ignored when it fails.
      this.onError(timeoutError('The upstream did not take the connection in time', CONNECT_STALL_CODE))
      this.gone = true
      return
    }
    const err = this.answering
      ? timeoutError('The upstream paused its response body too long', 'UND_ERR_BODY_TIMEOUT')
      : this.writeStalled
        ? timeoutError('The upstream stopped taking the request body', WRITE_TIMEOUT_CODE)
        : timeoutError('The upstream did not send its response headers in time', 'UND_ERR_HEADERS_TIMEOUT')
    // Aborting makes undici report the error to onError, and close the upstream connection. (Only exchanges on a
    // connection are watched, so the abort function is there.)
    this.abortUpstream?.(err)
  }

  /** Answers with an error before any header left: through Fastify when it owns the reply. */
  private fail (err: Error): void {
    answerError(this.ctx, err)
  }

  private settle (err?: unknown): void {
    const settled = this.settled
    if (settled !== null) {
      this.settled = null
      settled(err)
    } else if (err !== undefined) {
      // No promise to reject (relay): the fallback failed, so the request is answered with the error.
      if (!this.res.headersSent) this.fail(err as Error)
      else this.res.destroy()
    }
  }

  /** The response closed: finished by us, or abandoned by the client (then the upstream request is aborted). */
  clientClosed (): void {
    this.timeouts.unwatch(this)
    // Frees the compressor's memory at once (a no-op once it has finished).
    this.encoder?.destroy()
    if (!this.ended && !this.gone) {
      this.gone = true
      if (!this.upstreamDone && this.abortUpstream !== null) this.abortUpstream(clientGoneError())
      this.settle()
    }
    // An upstream that answered before reading the whole request body: the rest is read and discarded, as Node
    // does for an unread body, so the client connection can be reused or closed.
    const raw = this.req
    if (this.body !== null && !raw.complete && !raw.destroyed) raw.resume()
  }

  clientDrained (): void {
    if (!this.paused) return
    this.paused = false
    this.deadline = Date.now() + this.timeouts.bodyMs
    this.resumeUpstream?.()
  }

  /** undici is about to write the request on a connection: from now on the headers timeout runs (as undici's did). */
  onConnect (abort: (err?: Error) => void): void {
    if (this.gone) {
      abort(clientGoneError())
      return
    }
    this.abortUpstream = abort
    this.deadline = Date.now() + this.timeouts.headersMs
    this.timeouts.watch(this)
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // Interim responses (103 Early Hints) are not relayed; the final response follows.
    if (statusCode < 200) return true
    const reply = this.reply
    const res = this.res
    let headers: string[]
    let encoding: ContentEncoding | null = null
    try {
      headers = clientResponseHeaders(rawHeaders, reply !== null ? reply.getHeaders() : this.ctx.responseHeaders ?? NO_HEADERS)
      if (this.compress) encoding = compressionFor(this.req, statusCode, headers)
      res.writeHead(statusCode, headers)
    } catch (err) {
      // A header Node refuses to send: the upstream's answer cannot be relayed.
      this.gone = true
      this.abortUpstream?.(err as Error)
      this.log.warn({ upstream: this.origin, err: (err as Error).message }, 'upstream response could not be relayed')
      this.onUpstreamError?.('response-failed')
      this.fail(new UpstreamUnreachableError())
      this.settle()
      return false
    }
    this.answering = true
    if (this.onResponseHeaders !== undefined) this.onResponseHeaders(performance.now() - this.startedAt)
    this.resumeUpstream = resume
    this.deadline = Date.now() + this.timeouts.bodyMs
    reply?.hijack()
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]
      if (name.length === 14 && name.toLowerCase() === 'content-length') {
        this.remaining = Number(headers[i + 1])
        break
      }
    }
    if (encoding !== null) this.startEncoder(encoding, rawHeaders)
    this.settle()
    return true
  }

  /**
   * Puts a compressor between the upstream's body and the client: the upstream's chunks are written to it (a full
   * compressor pauses the upstream until it drains), and it is piped to the response (a client slow to read pauses
   * the compressor). The Content-Length was removed, so whether the body's length is known comes from the upstream's
   * raw headers.
   */
  private startEncoder (encoding: ContentEncoding, rawHeaders: Buffer[]): void {
    const encoder: ExchangeEncoder = createEncoder(encoding)
    encoder[kExchange] = this
    encoder.on('error', onEncoderError)
    encoder.pipe(this.res)
    this.encoder = encoder
    this.encoding = encoding
    this.flushEachChunk = !hasContentLength(rawHeaders)
  }

  /** The compressor failed (zlib ran out of memory): the response is cut, and the upstream request aborted. */
  encoderFailed (err: Error): void {
    this.log.warn({ upstream: this.origin, err: err.message }, 'response could not be compressed')
    this.res.destroy(err)
  }

  onData (chunk: Buffer): boolean {
    const encoder = this.encoder
    if (encoder !== null) return this.encode(encoder, chunk)
    const res = this.res
    if (chunk.length === this.remaining) {
      // The whole (rest of the) body: headers and body leave together, and the response is over.
      this.remaining = 0
      this.ended = true
      res.end(chunk)
      return true
    }
    if (this.remaining > 0) this.remaining -= chunk.length
    this.deadline = Date.now() + this.timeouts.bodyMs
    if (res.write(chunk)) return true
    if (!this.drainListening) {
      this.drainListening = true
      res.on('drain', onClientDrain)
    }
    this.paused = true
    return false
  }

  private encode (encoder: ExchangeEncoder, chunk: Buffer): boolean {
    this.deadline = Date.now() + this.timeouts.bodyMs
    const more = encoder.write(chunk)
    if (this.flushEachChunk) flushEncoder(encoder, this.encoding)
    if (more) return true
    if (!this.drainListening) {
      this.drainListening = true
      encoder.on('drain', onClientDrain)
    }
    this.paused = true
    return false
  }

  onComplete (): void {
    this.upstreamDone = true
    this.timeouts.unwatch(this)
    if (this.ended || this.gone) return
    this.ended = true
    // The compressor ends the response (pipe) once it has written its last bytes.
    if (this.encoder !== null) this.encoder.end()
    else this.res.end()
  }

  onError (err: Error): void {
    this.upstreamDone = true
    this.timeouts.unwatch(this)
    if (this.gone) return
    if (this.answering) {
      // The status line is out: the only honest signal left is an incomplete response.
      this.log.warn({ upstream: this.origin, code: errorCode(err) }, 'upstream response failed before its end')
      this.onUpstreamError?.('response-failed')
      this.ended = true
      this.encoder?.destroy()
      this.res.destroy(err)
      return
    }
    const code = errorCode(err)
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === WRITE_TIMEOUT_CODE) {
      // A stalled body has left in part, so no fallback can take the request over: 504.
      if (code === WRITE_TIMEOUT_CODE) this.log.warn({ upstream: this.origin, stalledMs: this.writeProgressMs }, 'upstream stopped taking the request body')
      else this.log.warn({ upstream: this.origin }, 'upstream did not answer in time')
      this.onUpstreamError?.(code === WRITE_TIMEOUT_CODE ? 'write-timeout' : 'timeout')
      this.fail(new UpstreamTimeoutError())
      this.settle()
      return
    }
    this.onUpstreamError?.('unreachable')
    if (code === CONNECT_STALL_CODE && this.onUnreachable === undefined) {
      this.fail(new UpstreamTimeoutError())
      this.settle()
      return
    }
    const onUnreachable = this.onUnreachable
    if (onUnreachable !== undefined && (this.body === null || !this.body.started)) {
      // The caller answers, and may still read the body (serving the request here), so this exchange lets go of
      // the response; the caller runs outside undici's callbacks.
      this.gone = true
      const res = this.res as Response
      res.removeListener('close', onClientClose)
      if (res[kExchange] === this) res[kExchange] = undefined
      queueMicrotask(() => {
        let answered: unknown
        try {
          answered = onUnreachable(err, this.ctx)
        } catch (thrown) {
          this.settle(thrown)
          return
        }
        Promise.resolve(answered).then(() => { this.settle() }, (thrown: unknown) => { this.settle(thrown) })
      })
      return
    }
    this.log.warn({ upstream: this.origin, code }, 'upstream could not be reached')
    this.fail(new UpstreamUnreachableError())
    this.settle()
  }
}
