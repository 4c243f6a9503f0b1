import { randomBytes } from 'node:crypto'
import { request as httpRequest, ServerResponse } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { answer } from './answer.js'
import { upstreamRequestHeaders } from './proxy-headers.js'
import { pendingResponseHeaders, type RequestContext } from './request-context.js'

/** Time allowed for the upstream to answer an upgrade request. */
export const UPSTREAM_HANDSHAKE_TIMEOUT_MS = 10_000
/** Time a socket gets to finish its closing handshake at shutdown before it is destroyed. */
export const CLOSE_GRACE_MS = 1_000
/** RFC 6455 close code "going away", sent to every client at shutdown. */
export const CLOSE_GOING_AWAY = 1001

// Server-to-client frames are unmasked: FIN + close opcode, length 2, code 1001.
const CLIENT_CLOSE_FRAME = Buffer.from([0x88, 0x02, 0x03, 0xe9])

// Headers that describe the hop between Navigator and the client, rebuilt for the upstream hop.
const HOP_BY_HOP = new Set(['connection', 'upgrade', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'proxy-connection'])

const kUpgrade = Symbol('navigator.upgrade')

interface PendingUpgrade {
  socket: Duplex
  head: Buffer
  /** Called once the client has its 101 and the relay has begun. */
  onUpgraded: (() => void) | undefined
}

type UpgradeRequest = IncomingMessage & { [kUpgrade]?: PendingUpgrade }

/** True when this request arrived through the http server's 'upgrade' event. */
export function isUpgrade (raw: IncomingMessage): boolean {
  return (raw as UpgradeRequest)[kUpgrade] !== undefined
}

/** Client-to-server frames must be masked (RFC 6455 section 5.3), so the upstream gets a masked close 1001. */
function upstreamCloseFrame (): Buffer {
  const mask = randomBytes(4)
  return Buffer.from([0x88, 0x82, mask[0], mask[1], mask[2], mask[3], 0x03 ^ mask[0], 0xe9 ^ mask[1]])
}

interface Relay {
  client: Duplex
  upstream: Duplex
  release: () => void
  /** Sides not yet closed. */
  open: number
}

export interface WebSocketRelayOptions {
  log: FastifyBaseLogger
  /** As the HTTP proxy's option: keep a trusted edge's X-Forwarded-Proto and -Host and extend its X-Forwarded-For. */
  trustForwarded?: boolean
}

export interface RelayTarget {
  /** Upstream host, normally 127.0.0.1. */
  host: string
  port: number
  /** Path and query string sent upstream. */
  path: string
  /** Called once when the relay ends; counts the socket for idle decisions until then. */
  release: () => void
  /** Answers the client when the upstream cannot be reached; defaults to a 502. */
  onUnreachable?: () => unknown
}

const TEXT = Object.freeze(['content-type', 'text/plain; charset=utf-8'])

/**
 * Takes over an upgrade request from the http server's 'upgrade' event: a response on its socket, for whatever
 * answers with plain HTTP (a replay, the maintenance page, 404: the socket is ended after it), and the socket and
 * head kept for relay(). `onUpgraded` is called when the client gets its 101.
 */
export function acceptUpgrade (raw: IncomingMessage, socket: Duplex, head: Buffer, log: FastifyBaseLogger, onUpgraded?: () => void): ServerResponse {
  (raw as UpgradeRequest)[kUpgrade] = { socket, head, onUpgraded }
  socket.on('error', (err) => { log.debug({ err: err.message }, 'websocket client socket error') })
  const response = new ServerResponse(raw)
  response.shouldKeepAlive = false
  response.assignSocket(socket as never)
  response.once('finish', () => { closeRefusedUpgrade(socket) })
  return response
}

/**
 * Hands an upgrade request's socket (and the bytes read after its headers) to a WebSocket server of Navigator's own
 * (the cable hub), which answers the handshake itself: the response acceptUpgrade made lets go of the socket, and
 * the server stops counting the upgrade as pending. Null when the request is not an upgrade or its client has gone.
 */
export function takeUpgrade (ctx: RequestContext): { socket: Duplex, head: Buffer } | null {
  const pending = (ctx.req as UpgradeRequest)[kUpgrade]
  if (pending === undefined || pending.socket.destroyed) return null
  ctx.reply?.hijack()
  ctx.res.detachSocket(pending.socket as never)
  pending.onUpgraded?.()
  return { socket: pending.socket, head: pending.head }
}

/**
 * How long a socket answered with plain HTTP instead of a 101 is kept half-closed, reading and discarding what the
 * client still sends (a body it had started, say), so that its FIN, not a reset, follows our answer; then it is
 * destroyed, whether the client closed its side or not.
 */
export const ANSWERED_UPGRADE_LINGER_MS = 2_000

/** Ends an upgrade socket that gets no 101 (after `response`, a raw HTTP answer, when given), then lingers as above. */
export function closeRefusedUpgrade (socket: Duplex, response?: string): void {
  if (response === undefined) socket.end()
  else socket.end(response)
  socket.resume()
  const timer = setTimeout(destroySide, ANSWERED_UPGRADE_LINGER_MS, socket)
  timer.unref()
  socket.once('close', () => { clearTimeout(timer) })
}

/**
 * A hand-written WebSocket proxy: the upgrade request goes through the pipeline's steps first (so the replay and
 * sticky steps decide, and may answer with plain HTTP), then the upstream handshake is made before the client gets
 * any answer, and after both 101s the bytes of the two TCP sockets are relayed.
 */
export class WebSocketRelay {
  readonly #log: FastifyBaseLogger
  readonly #trustForwarded: boolean
  readonly #relays = new Set<Relay>()

  constructor (options: WebSocketRelayOptions) {
    this.#log = options.log
    this.#trustForwarded = options.trustForwarded === true
  }

  /** Open proxied WebSockets. */
  get size (): number {
    return this.#relays.size
  }

  /**
   * Proxies the upgrade of the request to the target. Resolves once the client has an answer: the upstream's 101
   * (then the sockets are relayed), or the upstream's refusal, or the unreachable answer.
   */
  async relay (ctx: RequestContext, target: RelayTarget): Promise<void> {
    const pending = (ctx.req as UpgradeRequest)[kUpgrade]
    if (pending === undefined) throw new Error('relay() called for a request that is not an upgrade')
    const release = onceOnly(target.release)
    // The client may have left while the steps or a starting tenant kept it waiting.
    if (pending.socket.destroyed) {
      release()
      return
    }
    const relayBytes = (upstream: Duplex): void => { this.#pipe(pending.socket, upstream, release) }
    await new Promise<void>((resolve) => {
      new Handshake(ctx, pending, target, release, relayBytes, resolve, this.#trustForwarded).start()
    })
  }

  /** At shutdown: a close frame 1001 to both sides of every relay, then both ends closed. */
  async closeAll (): Promise<void> {
    const relays = [...this.#relays]
    if (relays.length === 0) return
    this.#log.info({ count: relays.length }, 'closing websockets')
    await Promise.all(relays.map(async (relay) => await closeRelay(relay)))
  }

  #pipe (client: Duplex, upstream: Duplex, release: () => void): void {
    const relay: Relay = { client, upstream, release, open: 2 }
    this.#relays.add(relay)
    const sides = client as RelaySide
    const upstreamSide = upstream as RelaySide
    sides[kRelay] = relay
    upstreamSide[kRelay] = relay
    sides[kPeer] = upstreamSide
    upstreamSide[kPeer] = sides
    sides[kOwner] = this.#relays
    upstreamSide[kOwner] = this.#relays
    for (const socket of [sides, upstreamSide]) {
      socket.setNoDelay?.(true)
      socket.setTimeout?.(0)
      socket.on('close', onSideClose)
      socket.on('end', onSideEnd)
      socket.on('drain', onSideDrain)
      socket.on('data', onSideData)
    }
    upstream.on('error', this.#onUpstreamError)
    // A side that ended or closed while the handshake went on (a client gone before its tenant was ready) has
    // emitted that event already: it is applied now, or the other side would be held open for ever.
    for (const socket of [sides, upstreamSide]) {
      if (socket.readableEnded) onSideEnd.call(socket)
      if (socket.closed) onSideClose.call(socket, false)
    }
  }

  readonly #onUpstreamError = (err: Error): void => { this.#log.debug({ err: err.message }, 'websocket upstream socket error') }
}

/**
 * The upstream half of one upgrade: the upstream request is made before the client gets any answer, and its outcome
 * (101, refusal, error, timeout, the client gone) answers the client once. A class rather than closures in relay():
 * the listeners keep only what the handshake needs, and nothing of it once it is settled.
 */
class Handshake {
  private settled = false
  private readonly upstreamRequest: ReturnType<typeof httpRequest>

  constructor (
    private readonly ctx: RequestContext,
    private readonly pending: PendingUpgrade,
    private readonly target: RelayTarget,
    private readonly release: () => void,
    /** Starts relaying bytes once both sides have their 101. */
    private readonly relayBytes: (upstream: Duplex) => void,
    private readonly resolve: () => void,
    trustForwarded: boolean
  ) {
    this.upstreamRequest = httpRequest({
      host: target.host,
      port: target.port,
      method: 'GET',
      path: target.path,
      headers: upstreamHeaders(ctx.req, trustForwarded),
      timeout: UPSTREAM_HANDSHAKE_TIMEOUT_MS,
      agent: false
    })
  }

  start (): void {
    this.pending.socket.once('close', this.clientGone)
    this.upstreamRequest.once('timeout', this.timedOut)
    this.upstreamRequest.once('error', this.failed)
    this.upstreamRequest.once('response', this.refused)
    this.upstreamRequest.once('upgrade', this.upgraded)
    this.upstreamRequest.end()
  }

  /**
   * Once settled, the handshake lets go of everything: an upgraded upstream socket keeps its request object for as
   * long as the WebSocket lasts, and the request would otherwise keep this handshake, and through it the client's
   * request and response, alive with it.
   */
  private settle (): void {
    this.settled = true
    this.pending.socket.removeListener('close', this.clientGone)
    const request = this.upstreamRequest
    request.removeListener('timeout', this.timedOut)
    request.removeListener('error', this.failed)
    request.removeListener('response', this.refused)
    request.removeListener('upgrade', this.upgraded)
    request.on('error', ignoreError)
    this.resolve()
  }

  private readonly clientGone = (): void => {
    this.upstreamRequest.destroy()
    this.release()
    this.settle()
  }

  private readonly timedOut = (): void => {
    this.upstreamRequest.destroy()
    if (this.settled) return
    this.ctx.log.warn({ port: this.target.port }, 'websocket upstream did not answer the upgrade in time')
    this.release()
    answer(this.ctx, 504, TEXT, 'Gateway Timeout\n')
    this.settle()
  }

  private readonly failed = (err: Error): void => {
    if (this.settled) return
    this.release()
    if (this.target.onUnreachable !== undefined) {
      this.target.onUnreachable()
    } else {
      this.ctx.log.warn({ port: this.target.port, err: err.message }, 'websocket upstream could not be reached')
      answer(this.ctx, 502, TEXT, 'Bad Gateway\n')
    }
    this.settle()
  }

  /** The upstream refused the upgrade (403, 404, ...): the client gets that answer, never a 101. */
  private readonly refused = (response: IncomingMessage): void => {
    if (this.settled) { response.resume(); return }
    const ctx = this.ctx
    const cookies = pendingCookies(ctx)
    ctx.reply?.hijack()
    const raw = ctx.res
    raw.statusCode = response.statusCode ?? 502
    if (response.statusMessage !== undefined) raw.statusMessage = response.statusMessage
    copyHeaders(response.headers, raw)
    appendCookies(cookies, raw)
    response.pipe(raw)
    const release = this.release
    const client = this.pending.socket
    response.once('end', () => { release() })
    response.once('error', () => { client.destroy(); release() })
    this.settle()
  }

  private readonly upgraded = (response: IncomingMessage, upstream: Duplex, upstreamHead: Buffer): void => {
    if (this.settled) { upstream.destroy(); return }
    const ctx = this.ctx
    const client = this.pending.socket
    const cookies = pendingCookies(ctx)
    ctx.reply?.hijack()
    ctx.res.detachSocket(client as never)
    client.write(handshakeResponse(response, cookies))
    if (upstreamHead.length > 0) client.write(upstreamHead)
    if (this.pending.head.length > 0) upstream.write(this.pending.head)
    this.relayBytes(upstream)
    this.pending.onUpgraded?.()
    this.settle()
  }
}

// The relay of one WebSocket's two sockets, with listeners shared by every relay (no closure per connection: with
// thousands of open sockets, pipe()'s eight closures per direction were a good part of each one's memory). Each
// side knows its peer, its relay and the set of open relays through symbols.
const kPeer = Symbol('navigator.websocketPeer')
const kRelay = Symbol('navigator.websocketRelay')
const kOwner = Symbol('navigator.websocketRelays')

type RelaySide = Duplex & {
  [kPeer]?: RelaySide
  [kRelay]?: Relay
  [kOwner]?: Set<Relay>
  setNoDelay?: (on: boolean) => void
  setTimeout?: (ms: number) => void
}

/** Bytes from one side go to the other; a full peer pauses this side until it drains (backpressure both ways). */
function onSideData (this: RelaySide, chunk: Buffer): void {
  const peer = this[kPeer]
  if (peer === undefined || peer.destroyed) return
  if (!peer.write(chunk)) this.pause()
}

function onSideDrain (this: RelaySide): void {
  const peer = this[kPeer]
  if (peer !== undefined && !peer.destroyed && peer.isPaused()) peer.resume()
}

/** One side ended cleanly: the other is ended too, after what it still has to write (the close frame among it). */
function onSideEnd (this: RelaySide): void {
  const peer = this[kPeer]
  if (peer !== undefined && !peer.destroyed && !peer.writableEnded) peer.end()
}

/**
 * A side closed. After a failure the other is destroyed at once; after a clean close it gets CLOSE_GRACE_MS to
 * finish flushing. The relay ends (and is released) when both are closed.
 */
function onSideClose (this: RelaySide, hadError: boolean): void {
  const peer = this[kPeer]
  const relay = this[kRelay]
  if (peer === undefined || relay === undefined) return
  if (--relay.open > 0) {
    if (hadError) peer.destroy()
    else if (!peer.destroyed) setTimeout(destroySide, CLOSE_GRACE_MS, peer).unref()
    return
  }
  this[kOwner]?.delete(relay)
  relay.release()
}

function destroySide (side: Duplex): void {
  side.destroy()
}

/** Stops relaying bytes between the two sides (at shutdown, before the close frames are written). */
function stopRelaying (relay: Relay): void {
  relay.client.removeListener('data', onSideData)
  relay.upstream.removeListener('data', onSideData)
  relay.client.removeListener('end', onSideEnd)
  relay.upstream.removeListener('end', onSideEnd)
}

/** An upstream request's error after its handshake settled has no one left to tell; the relay sees the socket's. */
function ignoreError (): void {}

function onceOnly (fn: () => void): () => void {
  let called = false
  return () => {
    if (called) return
    called = true
    fn()
  }
}

async function closeRelay (relay: Relay): Promise<void> {
  const { client, upstream } = relay
  stopRelaying(relay)
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      client.destroy()
      upstream.destroy()
    }, CLOSE_GRACE_MS)
    timer.unref()
    let open = 2
    const closed = (): void => {
      if (--open === 0) {
        clearTimeout(timer)
        resolve()
      }
    }
    if (client.destroyed) closed(); else client.once('close', closed)
    if (upstream.destroyed) closed(); else upstream.once('close', closed)
    if (!client.destroyed) client.end(CLIENT_CLOSE_FRAME)
    if (!upstream.destroyed) upstream.end(upstreamCloseFrame())
  })
}

/** The upstream request's headers: those of the HTTP proxy, plus the two that ask for the upgrade. */
function upstreamHeaders (req: IncomingMessage, trustForwarded: boolean): OutgoingHttpHeaders {
  const list = upstreamRequestHeaders(req, undefined, trustForwarded)
  const headers: OutgoingHttpHeaders = {}
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]
    const before = headers[name]
    headers[name] = before === undefined ? list[i + 1] : ([] as string[]).concat(before as string | string[], list[i + 1])
  }
  headers.connection = 'Upgrade'
  headers.upgrade = req.headers.upgrade ?? 'websocket'
  return headers
}

function copyHeaders (headers: IncomingHttpHeaders, target: ServerResponse): void {
  for (const name in headers) {
    if (HOP_BY_HOP.has(name)) continue
    const value = headers[name]
    if (value !== undefined) target.setHeader(name, value)
  }
}

/** The cookies a step set for this request's answer (the sticky cookie), as a list. */
function pendingCookies (ctx: RequestContext): string[] {
  const cookies = pendingResponseHeaders(ctx)?.['set-cookie']
  return cookies === undefined ? [] : Array.isArray(cookies) ? cookies.map(String) : [String(cookies)]
}

/** Cookies a step set join the upstream's own, each as its own header. */
function appendCookies (ours: string[], target: ServerResponse): void {
  if (ours.length === 0) return
  const theirs = target.getHeader('set-cookie')
  const list = theirs === undefined ? [] : Array.isArray(theirs) ? theirs.map(String) : [String(theirs)]
  target.setHeader('set-cookie', [...list, ...ours])
}

/** The upstream's 101 status line and headers, verbatim, plus any cookie a step set. */
function handshakeResponse (response: IncomingMessage, cookies: string[]): string {
  let head = `HTTP/1.1 101 ${response.statusMessage ?? 'Switching Protocols'}\r\n`
  const raw = response.rawHeaders
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`
  for (const cookie of cookies) head += `Set-Cookie: ${cookie}\r\n`
  return head + '\r\n'
}
