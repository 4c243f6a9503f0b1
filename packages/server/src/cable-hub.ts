import { createRequire } from 'node:module'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { closeRefusedUpgrade } from '@navigator/proxy'
import type { MachineIdle } from '@navigator/supervisor'
import type { WebSocket, WebSocketServer } from 'ws'
import { parseClientMessage, subscribedMessage } from './cable-message.js'

// The TurboCable hub (config `cable`): browsers' WebSockets subscribe to named streams, the apps POST broadcasts to
// the broadcast path, and each broadcast is written to the stream's subscribers. The protocol is the Go Navigator's:
// JSON text messages `{"type":"subscribe"|"unsubscribe","stream":"..."}` from the client, answered by
// `{"type":"subscribed","stream":"..."}` for a subscription; `{"type":"message","stream":"...","data":...}` for a
// broadcast; `{"type":"ping"}` from the hub every ping interval, answered by `{"type":"pong"}`. Nothing is sent on
// connect. The hub outlives reloads (a reload keeps its WebSockets); its state is a Set of stream names per socket
// and a Map from stream to its sockets.

/** The Go Navigator's ping period; NAVIGATOR_CABLE_PING_INTERVAL or the `cablePingIntervalMs` option changes it. */
export const CABLE_PING_INTERVAL_MS = 30_000
/**
 * A client message larger than this closes its WebSocket with 1009, as the Go Navigator's 128 KiB read limit does
 * (the clients send only small subscribe and pong messages).
 */
export const CABLE_MAX_MESSAGE_BYTES = 128 * 1024
/**
 * A subscriber whose socket holds more unsent bytes than this misses the broadcasts until it reads again, as the Go
 * Navigator drops a message for a connection with a full queue: one frozen client cannot grow Navigator's memory.
 */
export const CABLE_MAX_BUFFERED_BYTES = 4 * 1024 * 1024
/** Streams one WebSocket may subscribe to; one more closes it (1008): the hub's memory is not a client's to grow. */
export const CABLE_MAX_STREAMS_PER_SOCKET = 1000
const POLICY_VIOLATION = 1008
/** At shutdown, how long a client gets to answer the close frame (1001) before its socket is destroyed. */
export const CABLE_CLOSE_GRACE_MS = 1_000

const OPEN = 1
const GOING_AWAY = 1001
const PING = Buffer.from('{"type":"ping"}')
const TEXT_FRAME = Object.freeze({ binary: false })

const kHub = Symbol('navigator.cableHub')
const kStreams = Symbol('navigator.cableStreams')
const kDeadline = Symbol('navigator.cableDeadline')
const kCookies = Symbol('navigator.cableCookies')

/** A hub WebSocket: its streams (null until it subscribes), and when it must have answered a ping by. */
type Subscriber = WebSocket & {
  [kHub]: CableHub
  [kStreams]: Set<string> | null
  [kDeadline]: number
}

type HubRequest = IncomingMessage & { [kCookies]?: readonly string[] }

type WsModule = typeof import('ws')

export interface CableHubOptions {
  log: FastifyBaseLogger
  /** Open hub WebSockets count as activity for the Machine's idle suspend or stop. */
  machineIdle: MachineIdle | null
  /** Default CABLE_PING_INTERVAL_MS; a client silent for twice this long is disconnected. */
  pingIntervalMs?: number
}

/**
 * The hub. `ws` (the library @fastify/websocket is built on) is loaded at the first connection, in noServer mode:
 * the upgrade reaches the hub through the pipeline's steps (see the server README, "TurboCable hub").
 */
export class CableHub {
  readonly #log: FastifyBaseLogger
  readonly #machineIdle: MachineIdle | null
  readonly #pingIntervalMs: number
  readonly #subscribers = new Set<Subscriber>()
  #closing = false
  readonly #streams = new Map<string, Set<Subscriber>>()
  #server: WebSocketServer | null = null
  #pinger: NodeJS.Timeout | null = null

  constructor (options: CableHubOptions) {
    this.#log = options.log
    this.#machineIdle = options.machineIdle
    this.#pingIntervalMs = options.pingIntervalMs ?? CABLE_PING_INTERVAL_MS
  }

  /** Open hub WebSockets. */
  get size (): number {
    return this.#subscribers.size
  }

  /** Streams with at least one subscriber. */
  get streams (): number {
    return this.#streams.size
  }

  /**
   * Answers the handshake of an upgrade request (its socket taken from the pipeline) and adds the WebSocket to the
   * hub. `cookies` (the sticky cookie) go on the 101. A handshake `ws` refuses (no key, a bad version) gets its 400.
   */
  accept (req: IncomingMessage, socket: Duplex, head: Buffer, cookies: readonly string[]): void {
    // Shutting down: closeAll() has taken its list, a socket accepted now would keep the server open. Refused as the
    // proxy refuses an upgrade: half-closed, then destroyed after a linger, so a client cannot hold it open.
    if (this.#closing) {
      closeRefusedUpgrade(socket, 'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    if (cookies.length > 0) (req as HubRequest)[kCookies] = cookies
    this.#server ??= this.#createServer()
    this.#server.handleUpgrade(req, socket, head, this.#connected)
  }

  /** Writes `message` (a JSON text) to every subscriber of `stream`; returns how many it was written to. */
  broadcast (stream: string, message: Buffer): number {
    const subscribers = this.#streams.get(stream)
    if (subscribers === undefined) return 0
    let sent = 0
    let dropped = 0
    for (const subscriber of subscribers) {
      if (subscriber.readyState !== OPEN) continue
      if (subscriber.bufferedAmount > CABLE_MAX_BUFFERED_BYTES) {
        dropped++
        continue
      }
      subscriber.send(message, TEXT_FRAME)
      sent++
    }
    if (dropped > 0) this.#log.warn({ stream, dropped }, 'cable broadcast dropped for subscribers that do not read')
    return sent
  }

  /** At shutdown: a close frame 1001 to every hub WebSocket; a socket still open CABLE_CLOSE_GRACE_MS later is destroyed. */
  async closeAll (): Promise<void> {
    this.#closing = true
    this.#stopPinging()
    const subscribers = [...this.#subscribers]
    if (subscribers.length === 0) return
    this.#log.info({ count: subscribers.length }, 'closing cable websockets')
    await Promise.all(subscribers.map(async (subscriber) => await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { subscriber.terminate() }, CABLE_CLOSE_GRACE_MS)
      timer.unref()
      subscriber.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
      subscriber.close(GOING_AWAY)
    })))
  }

  #createServer (): WebSocketServer {
    const { WebSocketServer } = createRequire(import.meta.url)('ws') as WsModule
    const server = new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: CABLE_MAX_MESSAGE_BYTES, perMessageDeflate: false })
    server.on('headers', addCookies)
    return server
  }

  readonly #connected = (ws: WebSocket): void => {
    const subscriber = ws as Subscriber
    subscriber[kHub] = this
    subscriber[kStreams] = null
    subscriber[kDeadline] = Date.now() + 2 * this.#pingIntervalMs
    subscriber.on('message', CableHub.#onMessage)
    subscriber.on('pong', CableHub.#onPong)
    subscriber.on('close', CableHub.#onClose)
    subscriber.on('error', CableHub.#onError)
    this.#subscribers.add(subscriber)
    this.#machineIdle?.webSocketOpened()
    if (this.#pinger === null) {
      this.#pinger = setInterval(this.#ping, this.#pingIntervalMs)
      this.#pinger.unref()
    }
    this.#log.debug({ total: this.#subscribers.size }, 'cable websocket connected')
  }

  /**
   * One timer for the whole hub: every subscriber gets a ping; one that has not answered (a pong message, or a pong
   * frame) for twice the interval is disconnected, as the Go Navigator's read deadline does.
   */
  readonly #ping = (): void => {
    const now = Date.now()
    for (const subscriber of this.#subscribers) {
      if (now >= subscriber[kDeadline]) {
        subscriber.terminate()
        continue
      }
      if (subscriber.readyState === OPEN && subscriber.bufferedAmount <= CABLE_MAX_BUFFERED_BYTES) subscriber.send(PING, TEXT_FRAME)
    }
  }

  #stopPinging (): void {
    if (this.#pinger === null) return
    clearInterval(this.#pinger)
    this.#pinger = null
  }

  #subscribe (subscriber: Subscriber, stream: string): void {
    if ((subscriber[kStreams]?.size ?? 0) >= CABLE_MAX_STREAMS_PER_SOCKET && subscriber[kStreams]?.has(stream) !== true) {
      this.#log.warn({ limit: CABLE_MAX_STREAMS_PER_SOCKET }, 'a cable WebSocket asked for more streams than a page needs; closed')
      subscriber.close(POLICY_VIOLATION)
      return
    }
    let subscribers = this.#streams.get(stream)
    if (subscribers === undefined) this.#streams.set(stream, subscribers = new Set())
    subscribers.add(subscriber)
    subscriber[kStreams] ??= new Set()
    subscriber[kStreams].add(stream)
    this.#log.debug({ stream }, 'cable subscribed')
  }

  #unsubscribe (subscriber: Subscriber, stream: string): void {
    const subscribers = this.#streams.get(stream)
    if (subscribers !== undefined) {
      subscribers.delete(subscriber)
      if (subscribers.size === 0) this.#streams.delete(stream)
    }
    subscriber[kStreams]?.delete(stream)
  }

  #closed (subscriber: Subscriber): void {
    if (!this.#subscribers.delete(subscriber)) return
    const streams = subscriber[kStreams]
    if (streams !== null) for (const stream of streams) this.#unsubscribe(subscriber, stream)
    subscriber[kStreams] = null
    this.#machineIdle?.webSocketClosed()
    if (this.#subscribers.size === 0) this.#stopPinging()
    this.#log.debug({ total: this.#subscribers.size }, 'cable websocket disconnected')
  }

  // The listeners are shared by every subscriber (no closures per connection: see bench/README.md, "TurboCable hub").

  static #onMessage (this: WebSocket, data: Buffer): void {
    const subscriber = this as Subscriber
    const message = parseClientMessage(data.toString())
    if (message === null) return
    const { type, stream } = message
    if (type === 'pong') {
      subscriber[kDeadline] = Date.now() + 2 * subscriber[kHub].#pingIntervalMs
      return
    }
    if (stream === '') return
    if (type === 'subscribe') {
      subscriber[kHub].#subscribe(subscriber, stream)
      if (subscriber.readyState === OPEN) subscriber.send(subscribedMessage(stream))
    } else if (type === 'unsubscribe') {
      subscriber[kHub].#unsubscribe(subscriber, stream)
    }
  }

  static #onPong (this: WebSocket): void {
    const subscriber = this as Subscriber
    subscriber[kDeadline] = Date.now() + 2 * subscriber[kHub].#pingIntervalMs
  }

  static #onClose (this: WebSocket): void {
    const subscriber = this as Subscriber
    subscriber[kHub].#closed(subscriber)
  }

  static #onError (this: WebSocket, err: Error): void {
    (this as Subscriber)[kHub].#log.debug({ err: err.message }, 'cable websocket error')
  }
}

/** The 'headers' listener of the hub's server: the cookies a step set for the request go on the 101. */
function addCookies (headers: string[], req: IncomingMessage): void {
  const cookies = (req as HubRequest)[kCookies]
  if (cookies === undefined) return
  for (const cookie of cookies) headers.push(`Set-Cookie: ${cookie}`)
}
