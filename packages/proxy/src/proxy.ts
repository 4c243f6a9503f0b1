import type { Dispatcher, Pool as UndiciPool } from 'undici'
import { BodyRelay, bodyStream, hasBody, minorCollectionEvery } from './body-relay.js'
import { InvalidOptionError, UpstreamUnreachableError } from './errors.js'
import { Exchange, ExchangeTimeouts, type Settle } from './exchange.js'
import { upstreamRequestHeaders } from './proxy-headers.js'
import type { RequestContext } from './request-context.js'
import { Pool } from './undici-pool.js'

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
  /**
   * Run a minor garbage collection every this many bytes of relayed request body, so that large uploads do not
   * grow the process's memory by tens of MiB of dead chunks; undefined = never (the process's own GC policy).
   */
  collectEveryBodyBytes?: number
  /**
   * Keep the client's X-Forwarded-Proto and -Host and append to its X-Forwarded-For: only when every peer is a
   * trusted edge (on Fly, its proxy). Default false: those headers are replaced by this connection's own values.
   */
  trustForwarded?: boolean
  /**
   * Compress responses by the client's Accept-Encoding (gzip or brotli, text types only; see compress.ts). Default
   * false: a proxy passes bodies through unchanged unless asked; a request's own `compress` wins.
   */
  compress?: boolean
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
   * consumed, so the caller can still answer the request another way (sticky fallback, maintenance page). It gets
   * the request's context, so one options object can serve every request.
   */
  onUnreachable?: (err: Error, ctx: RequestContext) => unknown
  /** Extra request headers for the upstream (replacing any of the same name). */
  headers?: Readonly<Record<string, string>>
  /**
   * For an upstream that is another Machine: how long it may go without progress before the request is given up.
   * A connection not made within it (a hung host drops the packets) counts as unreachable: `onUnreachable` answers
   * (without it, 504), since no byte of the request has left. Once connected, an upstream that takes none of the
   * request body for that long while the client still sends it (a stopped process: the kernel accepts the
   * connection, nobody reads) ends the request with 504. Undefined = no such limit (the connect timeout, then the
   * headers timeout once the body is sent).
   */
  writeProgressTimeoutMs?: number
  /**
   * Called when the upstream's response headers arrive, with the milliseconds since the request was handed to the
   * proxy (connecting included): for a latency histogram. Keep one function per upstream rather than one per
   * request; without it the proxy reads no clock.
   */
  onResponseHeaders?: (elapsedMs: number) => void
  /** Called once when the request fails upstream, with what failed (see UpstreamFailure); a client gone is none. */
  onUpstreamError?: (failure: UpstreamFailure) => void
  /** Compress this response (or not), instead of the proxy's `compress` option. */
  compress?: boolean
}

/**
 * What failed: the upstream could not be reached (or refused the connection: a 502, or the caller's
 * `onUnreachable`), sent no headers in time (504), stopped taking the request body (504), or failed after its
 * headers (the response is cut; its body timeout too).
 */
export type UpstreamFailure = 'unreachable' | 'timeout' | 'write-timeout' | 'response-failed'

export interface UpstreamProxy {
  /**
   * Proxies the request to `target` and answers it: streams both bodies, writes the upstream's response straight
   * to the client (a Fastify reply is hijacked once the upstream's headers arrived, keeping headers already set on
   * it; without a reply the headers steps added are kept), 502 when unreachable, 504 on the headers timeout.
   * Resolves once the answer is under way (or the client left), after `onUnreachable` has answered when it was
   * called.
   */
  forward (ctx: RequestContext, target: UpstreamTarget, options?: ForwardOptions): Promise<void>
  /** `forward` without the promise: the hot path of a step that leaves the whole answer to the proxy. */
  relay (ctx: RequestContext, target: UpstreamTarget, options?: ForwardOptions): void
  close (): Promise<void>
}

function checkTimeout (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value <= 0) throw new InvalidOptionError(name, 'must be a positive number of milliseconds')
  return value
}

function positiveInteger (name: string, value: number | undefined): number | undefined {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new InvalidOptionError(name, 'must be a positive integer')
  return value
}

/** The options checked once, with their defaults. */
function resolveOptions (options: UpstreamProxyOptions): Required<Omit<UpstreamProxyOptions, 'connections' | 'collectEveryBodyBytes'>> & Pick<UpstreamProxyOptions, 'connections' | 'collectEveryBodyBytes'> {
  if (options.trustForwarded !== undefined && typeof options.trustForwarded !== 'boolean') {
    throw new InvalidOptionError('trustForwarded', 'must be a boolean')
  }
  if (options.compress !== undefined && typeof options.compress !== 'boolean') {
    throw new InvalidOptionError('compress', 'must be a boolean')
  }
  return {
    connectTimeoutMs: checkTimeout('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    headersTimeoutMs: checkTimeout('headersTimeoutMs', options.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS),
    bodyTimeoutMs: checkTimeout('bodyTimeoutMs', options.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS),
    connections: positiveInteger('connections', options.connections),
    collectEveryBodyBytes: positiveInteger('collectEveryBodyBytes', options.collectEveryBodyBytes),
    trustForwarded: options.trustForwarded === true,
    compress: options.compress === true
  }
}

export function createUpstreamProxy (rawOptions: UpstreamProxyOptions = {}): UpstreamProxy {
  const { connectTimeoutMs: connectTimeout, headersTimeoutMs: headersTimeout, bodyTimeoutMs: bodyTimeout, connections, collectEveryBodyBytes: every, trustForwarded, compress } = resolveOptions(rawOptions)
  const accounting = every === undefined ? null : minorCollectionEvery(every)

  const pools = new Map<string, UndiciPool>()
  let closed = false

  // The headers and body timeouts are the exchanges' own (ExchangeTimeouts: one interval, no timer per request);
  // undici keeps the connect timeout, which is per connection.
  const timeouts = new ExchangeTimeouts(headersTimeout, bodyTimeout)

  function poolFor (origin: string): UndiciPool {
    let pool = pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, { connectTimeout, headersTimeout: 0, bodyTimeout: 0, connections: connections ?? null })
      pools.set(origin, pool)
    }
    return pool
  }

  function start (ctx: RequestContext, target: UpstreamTarget, forwardOptions: ForwardOptions | undefined, settled: Settle | null): void {
    // A client that left before its request could be sent (while a tenant started, say): nothing is proxied.
    if (ctx.res.destroyed) {
      settled?.()
      return
    }
    const body = hasBody(ctx.req.headers) ? new BodyRelay(bodyStream(ctx), accounting) : null
    const exchange = new Exchange(ctx, target.origin, body, forwardOptions, settled, timeouts, compress)
    if (closed) {
      exchange.onError(new UpstreamUnreachableError())
      return
    }
    let headers: string[]
    try {
      headers = upstreamRequestHeaders(ctx.req, forwardOptions?.headers, trustForwarded)
    } catch (err) {
      exchange.onError(err as Error)
      return
    }
    exchange.awaitConnection()
    // dispatch() reports its own failures (a bad header, a closed pool) to the handler's onError.
    poolFor(target.origin).dispatch({
      method: ctx.req.method as Dispatcher.HttpMethod,
      path: target.path ?? ctx.req.url ?? '/',
      headers,
      body
    }, exchange as unknown as Dispatcher.DispatchHandler)
  }

  async function forward (ctx: RequestContext, target: UpstreamTarget, forwardOptions?: ForwardOptions): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      start(ctx, target, forwardOptions, (err) => { if (err === undefined) resolve(); else reject(err) })
    })
  }

  function relay (ctx: RequestContext, target: UpstreamTarget, forwardOptions?: ForwardOptions): void {
    start(ctx, target, forwardOptions, null)
  }

  async function close (): Promise<void> {
    closed = true
    const all = [...pools.values()]
    pools.clear()
    // The pools finish the requests in flight first; the timeouts keep running meanwhile, so none waits for ever.
    try {
      await Promise.all(all.map(async (pool) => await pool.close()))
    } finally {
      timeouts.close()
    }
  }

  return { forward, relay, close }
}

/**
 * A view of `proxy` whose every request gets `defaults` (a request's own options win), for the steps that proxy to
 * other Machines (their write-progress timeout). Closing it closes `proxy`.
 */
export function withForwardOptions (proxy: UpstreamProxy, defaults: ForwardOptions): UpstreamProxy {
  const merged = (options: ForwardOptions | undefined): ForwardOptions => options === undefined ? defaults : { ...defaults, ...options }
  return {
    forward: async (ctx, target, options) => { await proxy.forward(ctx, target, merged(options)) },
    relay: (ctx, target, options) => { proxy.relay(ctx, target, merged(options)) },
    close: async () => { await proxy.close() }
  }
}
