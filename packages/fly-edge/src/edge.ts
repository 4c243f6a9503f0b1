import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { isReplayable, isValidMachineId } from '@navigator/fly-replay'
import {
  NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE,
  NAV_FLY_EDGE_INVALID_OPTION,
  NAV_FLY_EDGE_INVALID_REPLAY,
  NAV_FLY_EDGE_NO_MACHINE,
  NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE,
  NAV_FLY_EDGE_REPLAY_ON_FALLBACK,
  NAV_FLY_EDGE_TOO_MANY_REPLAYS,
  NAV_FLY_EDGE_UNKNOWN_MACHINE,
  NAV_FLY_EDGE_UNREACHABLE
} from './errors.js'
import { listenOn, originOf } from './listen.js'
import {
  isValidAppName,
  MachineRegistry,
  type Machine,
  type MachineLauncher,
  type MachineSpec,
  type MachineState
} from './machines.js'
import { PrivateAddress } from './private-address.js'
import { regionMatches } from './regions.js'
import {
  formatReplayFailed,
  formatReplaySrc,
  parseReplayAnswer,
  parseReplayJson,
  REPLAY_CONTENT_TYPE,
  type EdgeReplay,
  type ReplayFailureReason
} from './replay.js'
import {
  isCacheableReplay,
  ReplayCache,
  type ReplayCacheMatch,
  type ReplayCacheRule,
  type ReplayCacheStatus
} from './replay-cache.js'

/** At most this many replays per request; the next fly-replay answer is an error. */
export const DEFAULT_MAX_REPLAYS = 10
/** How long a replay tries its target when the fly-replay answer names no `timeout` (a cached replay never does). */
export const DEFAULT_REPLAY_TIMEOUT_MS = 5_000
/** How long a first delivery, a forced one (`fly-force-instance-id`) and a fallback try to connect, autostart included. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** Pause before trying a replay target again after every candidate refused; it grows to MAX_RETRY_BACKOFF_MS. */
export const RETRY_BACKOFF_MS = 50
export const MAX_RETRY_BACKOFF_MS = 250
/** The last attempt, made at the deadline, still gets this long to connect: Fly's timeout is "best effort". */
const MIN_CONNECT_WAIT_MS = 100
const MAX_REPLAY_JSON_BYTES = 64 * 1024
/**
 * Methods that may be sent again after a Machine reset the connection before any byte of its answer (RFC 9110
 * section 9.2.2). A Machine that is being killed still completes TCP handshakes for a moment (the kernel does it) and
 * then resets them; such a request never reached the app, or may safely run twice.
 */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'
])
// Headers only the edge may set: a client cannot forge a replay's provenance or a cache verdict.
const EDGE_HEADERS = new Set([
  'fly-replay-src', 'fly-replay-failed', 'fly-preferred-instance-unavailable', 'fly-replay-cache-status'
])

export interface FlyEdgeOptions {
  /** The app new requests are balanced over. */
  app: string
  machines: MachineSpec[]
  /** Port, or host and port; default 127.0.0.1 and a free port. Flycast and private addresses use the same host. */
  listen?: number | { host?: string, port?: number }
  /** Port of each app's Flycast listener (`http://<app>.flycast`), by app name; default a free port per app. */
  flycastPorts?: Record<string, number>
  /** Starts, stops, suspends and resumes the Machines' processes. */
  launcher?: MachineLauncher
  /** Start a stopped (resume a suspended) Machine that a request needs; default true, like Fly's auto_start_machines. */
  autostart?: boolean
  maxReplays?: number
  /** Used when a fly-replay answer has no `timeout`. */
  replayTimeoutMs?: number
  connectTimeoutMs?: number
  /** Session-based replay caching of the app, like `[[http_service.http_options.replay_cache]]`; default none. */
  replayCache?: ReplayCacheRule[]
}

/** One routing decision, emitted as 'route' when a Machine answers a delivery. */
export interface RouteEvent {
  machineId: string
  app: string
  region: string
  method: string
  url: string
  status: number
  websocket: boolean
  /** The request came in on a Flycast listener rather than the public one. */
  flycast: boolean
  /** This delivery is a replay (fly-replay-src was added). */
  replayed: boolean
  /** This delivery is a fallback to the issuer (fly-replay-failed was added). */
  fallback: boolean
  /** Replays so far for this request. */
  replays: number
  /** The Machine answered this delivery with fly-replay. */
  answeredWithReplay: boolean
  preferredInstanceUnavailable?: string
  /** The `fly-replay-cache-status` this delivery carried, when it carried one. */
  replayCache?: ReplayCacheStatus
}

export interface ReplayFailedEvent {
  issuer: string
  reason: ReplayFailureReason
  header: string
}

export interface EdgeErrorEvent {
  code: string
  statusCode: number
  message: string
}

/** The public listener, or one app's Flycast listener. */
interface Listener {
  app: string
  flycast: boolean
  server: http.Server
  port: number
}

interface Exchange {
  listener: Listener
  method: string
  url: string
  headers: http.OutgoingHttpHeaders
  /** Buffered body of a replayable request (null: no body). */
  body: Buffer | null
  /** Streamed body of a request that cannot be replayed. */
  stream: http.IncomingMessage | null
  /** Part of the streamed body went to a Machine: it cannot go anywhere else. */
  streamUsed: boolean
  replayable: boolean
  websocket: { socket: Duplex, head: Buffer } | null
  response: http.ServerResponse | null
  aborted: boolean
  /** The replay cache rule that applies to this request, with its key. */
  cache: ReplayCacheMatch | null
}

type Attempt =
  | { kind: 'response', res: http.IncomingMessage, request: http.ClientRequest }
  | { kind: 'upgrade', res: http.IncomingMessage, socket: Socket, head: Buffer }

type Failure = ReplayFailureReason | 'connected'
type Reach = { machine: Machine, attempt: Attempt } | { failure: Failure, error?: Error }

interface Delivery {
  headers: http.OutgoingHttpHeaders
  url: string
  replayed: boolean
  fallback: boolean
  preferredInstanceUnavailable?: string
  cacheStatus?: ReplayCacheStatus
}

interface Outcome { delivery: Delivery, reach: Reach }

interface EdgeError extends Error { code: string, statusCode?: number }

function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function parseListen (listen: FlyEdgeOptions['listen']): { host: string, port: number } {
  if (listen === undefined) return { host: '127.0.0.1', port: 0 }
  if (typeof listen === 'number') return { host: '127.0.0.1', port: listen }
  return { host: listen.host ?? '127.0.0.1', port: listen.port ?? 0 }
}

function positive (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < 0) throw new NAV_FLY_EDGE_INVALID_OPTION(`${name} must be a number >= 0`)
  return value
}

function checkFlycastPorts (ports: Record<string, number> | undefined): Record<string, number> {
  if (ports === undefined) return {}
  if (typeof ports !== 'object' || ports === null) throw new NAV_FLY_EDGE_INVALID_OPTION('flycastPorts must be an object { app: port }')
  for (const [app, port] of Object.entries(ports)) {
    if (!isValidAppName(app) || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new NAV_FLY_EDGE_INVALID_OPTION(`flycastPorts.${app} must be the port of a valid app name`)
    }
  }
  return ports
}

/** The first value of a request header, trimmed; undefined when absent or empty. */
function headerValue (value: string | string[] | number | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value
  const text = first === undefined ? '' : String(first).trim()
  return text === '' ? undefined : text
}

/** Response headers as a flat raw list, without hop-by-hop ones. */
function forwardableRawHeaders (raw: string[], keepUpgrade: boolean): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    if (HOP_BY_HOP.has(name) && !(keepUpgrade && (name === 'connection' || name === 'upgrade'))) continue
    out.push(raw[i], raw[i + 1])
  }
  return out
}

function rawHead (status: number, message: string, raw: string[]): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`
  return head + '\r\n'
}

/** What a cache entry keeps of a replay: its target, in the app it was issued from. */
function cachedTarget (replay: EdgeReplay, app: string): EdgeReplay {
  const target: EdgeReplay = { elsewhere: false, app: replay.app ?? app }
  if (replay.instance !== undefined) target.instance = replay.instance
  if (replay.preferInstance !== undefined) target.preferInstance = replay.preferInstance
  if (replay.regions !== undefined) target.regions = replay.regions
  return target
}

/**
 * A local stand-in for Fly's edge proxy: balances new requests across started Machines, honours their fly-replay
 * answers, Fly's routing request headers and session replay cache the way Fly's proxy does, and gives each app a
 * Flycast address and each Machine a private address.
 */
export class FlyEdge extends EventEmitter {
  readonly app: string
  readonly #registry: MachineRegistry
  readonly #launcher: MachineLauncher | null
  readonly #autostart: boolean
  readonly #maxReplays: number
  readonly #replayTimeoutMs: number
  readonly #connectTimeoutMs: number
  readonly #listen: { host: string, port: number }
  readonly #flycastPorts: Record<string, number>
  readonly #cache: ReplayCache
  readonly #public: Listener
  readonly #flycast = new Map<string, Listener>()
  readonly #private = new Map<string, PrivateAddress>()
  readonly #agent = new http.Agent({ keepAlive: false })
  readonly #tunnels = new Set<Duplex>()
  readonly #transitions = new Map<string, Promise<void>>()
  #unwatch: (() => void) | null = null
  #listening = false

  constructor (options: FlyEdgeOptions) {
    super()
    if (typeof options !== 'object' || options === null) throw new NAV_FLY_EDGE_INVALID_OPTION('options must be an object')
    if (!isValidAppName(options.app)) throw new NAV_FLY_EDGE_INVALID_OPTION('app must be 1-63 characters of a-z, 0-9 and -')
    if (!Array.isArray(options.machines)) throw new NAV_FLY_EDGE_INVALID_OPTION('machines must be an array')
    this.app = options.app
    this.#registry = new MachineRegistry(options.app, options.machines)
    this.#launcher = options.launcher ?? null
    this.#autostart = options.autostart ?? true
    this.#maxReplays = positive('maxReplays', options.maxReplays, DEFAULT_MAX_REPLAYS)
    this.#replayTimeoutMs = positive('replayTimeoutMs', options.replayTimeoutMs, DEFAULT_REPLAY_TIMEOUT_MS)
    this.#connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS)
    this.#listen = parseListen(options.listen)
    this.#flycastPorts = checkFlycastPorts(options.flycastPorts)
    this.#cache = new ReplayCache(options.replayCache ?? [])
    this.#public = this.#createListener(options.app, false)
  }

  /** Opens the public listener, each app's Flycast listener and each Machine's private address. */
  async listen (): Promise<string> {
    this.#public.port = (await listenOn(this.#public.server, this.#listen.host, this.#listen.port)).port
    this.#listening = true
    try {
      for (const app of new Set([this.app, ...this.#registry.apps()])) await this.#openFlycast(app)
      for (const machine of this.#registry.list()) await this.#openPrivateAddress(machine)
    } catch (err) {
      await this.close()
      throw err
    }
    this.#unwatch = this.#launcher?.watchExits?.((id) => { this.#onExit(id) }) ?? null
    return this.url
  }

  /** The edge's base URL, e.g. http://127.0.0.1:8080 (after listen()). */
  get url (): string {
    if (!this.#listening) throw new NAV_FLY_EDGE_INVALID_OPTION('the edge is not listening yet')
    return originOf({ address: this.#listen.host, port: this.#public.port })
  }

  get port (): number {
    return this.#public.port
  }

  /** The origin playing `http://<app>.flycast` (after listen()); default the edge's app. */
  flycastUrl (app: string = this.app): string {
    const listener = this.#flycast.get(app)
    if (listener === undefined) throw new NAV_FLY_EDGE_INVALID_OPTION(`no Flycast listener for app ${app} (is the edge listening?)`)
    return originOf({ address: this.#listen.host, port: listener.port })
  }

  /** The origin playing `http://<id>.vm.<app>.internal:<port>` for a Machine (after listen()). */
  privateUrl (id: string): string {
    this.#known(id)
    const address = this.#private.get(id)
    if (address === undefined) throw new NAV_FLY_EDGE_INVALID_OPTION('the edge is not listening yet')
    return address.url
  }

  async close (): Promise<void> {
    this.#unwatch?.()
    const servers = [this.#public, ...this.#flycast.values()].map((l) => l.server).filter((s) => s.listening)
    const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
    for (const server of servers) server.closeAllConnections()
    for (const socket of this.#tunnels) socket.destroy()
    this.#agent.destroy()
    await Promise.all([...this.#private.values()].map(async (address) => await address.close()))
    await closed
  }

  machine (id: string): Readonly<Machine> | undefined {
    return this.#registry.get(id)
  }

  machines (app?: string): Array<Readonly<Machine>> {
    return this.#registry.list(app)
  }

  /**
   * Adds a Machine; once the edge listens, resolves when its private address (and its app's Flycast) listen, and
   * rejects (the Machine not added) when one cannot.
   */
  async addMachine (spec: MachineSpec): Promise<Readonly<Machine>> {
    const machine = this.#registry.add(spec)
    if (!this.#listening) return machine
    try {
      await this.#openFlycast(machine.app)
      await this.#openPrivateAddress(machine)
    } catch (err) {
      // A Machine without its addresses is not added at all.
      this.#registry.remove(machine.id)
      await this.#private.get(machine.id)?.close()
      this.#private.delete(machine.id)
      throw err
    }
    return machine
  }

  async startMachine (id: string): Promise<void> {
    await this.#transition(this.#known(id), 'started')
  }

  async stopMachine (id: string): Promise<void> {
    await this.#transition(this.#known(id), 'stopped')
  }

  async suspendMachine (id: string): Promise<void> {
    await this.#transition(this.#known(id), 'suspended')
  }

  /**
   * Destroys a Machine, as `fly machine destroy` does: its process is stopped and it leaves its app for good. It gets
   * no more requests and has no private address; a replay naming it finds no candidate (`reason=no_candidate` in
   * `fly-replay-failed`), a `prefer_instance` or `fly-prefer-instance-id` naming it goes to another Machine, and a
   * `fly-force-instance-id` naming it is refused as an unknown Machine. A stopped Machine that cannot be started is
   * different: it still exists, and a replay to it ends with `retries_exhausted` or `timeout`.
   */
  async destroyMachine (id: string): Promise<void> {
    const machine = this.#known(id)
    await this.#transition(machine, 'stopped')
    this.#registry.remove(id)
    await this.#private.get(id)?.close()
    this.#private.delete(id)
    this.emit('machine', { id, app: machine.app, from: 'stopped', state: 'destroyed' })
  }

  #known (id: string): Machine {
    const machine = this.#registry.get(id)
    if (machine === undefined) throw new NAV_FLY_EDGE_UNKNOWN_MACHINE(id)
    return machine
  }

  #createListener (app: string, flycast: boolean): Listener {
    const listener: Listener = { app, flycast, server: http.createServer(), port: 0 }
    listener.server.on('request', (req, res) => { this.#onRequest(listener, req, res) })
    listener.server.on('upgrade', (req, socket, head) => { this.#onUpgrade(listener, req, socket, head) })
    listener.server.on('clientError', (_err, socket) => { socket.destroy() })
    return listener
  }

  async #openFlycast (app: string): Promise<void> {
    if (this.#flycast.has(app)) return
    const listener = this.#createListener(app, true)
    this.#flycast.set(app, listener)
    listener.port = (await listenOn(listener.server, this.#listen.host, this.#flycastPorts[app] ?? 0)).port
  }

  async #openPrivateAddress (machine: Machine): Promise<void> {
    const address = new PrivateAddress(machine, this.#listen.host, machine.privatePort)
    this.#private.set(machine.id, address)
    await address.open()
  }

  // A launched Machine whose process exited on its own is stopped, as on Fly: no new requests are balanced to it, its
  // private address closes, and autostart starts it again for a request that needs it.
  #onExit (id: string): void {
    const machine = this.#registry.get(id)
    if (machine === undefined || machine.state !== 'started' || this.#transitions.has(id)) return
    this.#transition(machine, 'stopped').catch(() => {})
  }

  // One state change at a time per Machine; concurrent requests that need a Machine
  // started wait for the same transition.
  #transition (machine: Machine, to: MachineState): Promise<void> {
    const previous = this.#transitions.get(machine.id) ?? Promise.resolve()
    const next = previous.catch(() => {}).then(async () => {
      if (machine.state === to) return
      const from = machine.state
      const address = this.#private.get(machine.id)
      // A Machine on its way down has no address from the first moment, as its DNS record goes first on Fly.
      if (to !== 'started') await address?.sync(to)
      if (this.#launcher !== null) {
        if (to === 'started') {
          await (from === 'suspended' ? this.#launcher.resume(machine.id) : this.#launcher.start(machine.id))
        } else if (to === 'stopped') {
          await this.#launcher.stop(machine.id)
        } else {
          await this.#launcher.suspend(machine.id)
        }
      }
      machine.state = to
      await address?.sync()
      this.emit('machine', { id: machine.id, app: machine.app, from, state: to })
    })
    this.#transitions.set(machine.id, next)
    const cleanup = (): void => {
      if (this.#transitions.get(machine.id) === next) this.#transitions.delete(machine.id)
    }
    next.then(cleanup, cleanup)
    return next
  }

  #exchangeFrom (listener: Listener, req: http.IncomingMessage): Pick<Exchange, 'listener' | 'method' | 'url' | 'headers' | 'cache'> {
    const headers: http.OutgoingHttpHeaders = {}
    const connectionTokens = new Set(
      String(req.headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim()).filter(Boolean))
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || EDGE_HEADERS.has(name) || connectionTokens.has(name)) continue
      headers[name] = value
    }
    const clientIp = req.socket.remoteAddress ?? ''
    const forwardedFor = req.headers['x-forwarded-for']
    headers['x-forwarded-for'] = forwardedFor === undefined ? clientIp : `${String(forwardedFor)}, ${clientIp}`
    headers['x-forwarded-proto'] = 'http'
    headers['x-forwarded-port'] = String(listener.port)
    headers['fly-client-ip'] = clientIp
    headers['fly-forwarded-port'] = String(listener.port)
    headers.via = '1.1 fly-edge'
    // Fly's proxy keeps its connections to Machines open between requests. `Connection: close` (what Node sends by
    // default through an agent without keep-alive) makes the Machine's server close the socket as soon as it has
    // answered, and a Machine that answers a large upload early (Navigator's 503 when the cookie's Machine is asleep)
    // then resets a connection the edge is still writing the body to: the edge could lose that answer and reply 502.
    // Saying keep-alive, the Machine reads and discards the rest of the body instead; the edge still closes every
    // connection itself once its exchange is over (the agent keeps none).
    headers.connection = 'keep-alive'
    const url = req.url ?? '/'
    const host = req.headers.host ?? `${this.#listen.host}:${listener.port}`
    // The replay cache is the edge app's fly.toml setting: it applies to that app's listeners only.
    const cache = listener.app === this.app ? this.#cache.match(host, url.split('?')[0], req.headers) : null
    return { listener, method: req.method ?? 'GET', url, headers, cache }
  }

  #onRequest (listener: Listener, req: http.IncomingMessage, res: http.ServerResponse): void {
    const base = this.#exchangeFrom(listener, req)
    const length = req.headers['content-length']
    const chunked = req.headers['transfer-encoding'] !== undefined
    const size = length === undefined ? 0 : Number(length)
    const replayable = isReplayable(req.headers)
    if (chunked) base.headers['transfer-encoding'] = 'chunked'
    const exchange: Exchange = {
      ...base, body: null, stream: replayable ? null : req, streamUsed: false, replayable, websocket: null, response: res, aborted: false
    }
    res.on('close', () => { exchange.aborted = true })
    if (!replayable || size === 0) {
      this.#route(exchange).catch((err: EdgeError) => { this.#fail(exchange, err) })
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      exchange.body = Buffer.concat(chunks)
      this.#route(exchange).catch((err: EdgeError) => { this.#fail(exchange, err) })
    })
    req.on('error', () => { exchange.aborted = true })
  }

  #onUpgrade (listener: Listener, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const base = this.#exchangeFrom(listener, req)
    base.headers.connection = 'Upgrade'
    base.headers.upgrade = req.headers.upgrade ?? 'websocket'
    const exchange: Exchange = {
      ...base, body: null, stream: null, streamUsed: false, replayable: true, websocket: { socket, head }, response: null, aborted: false
    }
    this.#tunnels.add(socket)
    socket.on('error', () => { exchange.aborted = true })
    socket.on('close', () => {
      exchange.aborted = true
      this.#tunnels.delete(socket)
    })
    this.#route(exchange).catch((err: EdgeError) => { this.#fail(exchange, err) })
  }

  async #route (exchange: Exchange): Promise<void> {
    let { delivery, reach } = await this.#firstDelivery(exchange)
    let replays = 0
    for (;;) {
      if (exchange.aborted) {
        if ('attempt' in reach) this.#discard(reach.attempt)
        return
      }
      if (!('attempt' in reach)) throw new NAV_FLY_EDGE_UNREACHABLE(`a Machine of app ${exchange.listener.app} (${reach.failure})`)
      const { machine, attempt } = reach
      const replay = attempt.kind === 'response' ? await this.#readReplay(attempt) : null
      this.#emitRoute(exchange, delivery, machine, attempt, replays, replay !== null)
      if (replay === null) {
        this.#relay(exchange, attempt)
        return
      }
      const valid = this.#checkReplayAnswer(exchange, delivery, machine, attempt, replay, replays)
      replays++
      this.emit('replay', { issuer: machine.id, replay: valid, replays })
      const started = Date.now()
      const outcome = await this.#replay(exchange, machine, valid)
      this.#remember(exchange, delivery, machine, valid, outcome.reach)
      ;({ delivery, reach } = outcome)
      if ('attempt' in reach || exchange.aborted) continue
      ;({ delivery, reach } = await this.#fallback(exchange, machine, valid, reach.failure, started))
    }
  }

  #emitRoute (exchange: Exchange, delivery: Delivery, machine: Machine, attempt: Attempt, replays: number, answeredWithReplay: boolean): void {
    this.emit('route', {
      machineId: machine.id,
      app: machine.app,
      region: machine.region,
      method: exchange.method,
      url: delivery.url,
      status: attempt.res.statusCode ?? 0,
      websocket: exchange.websocket !== null,
      flycast: exchange.listener.flycast,
      replayed: delivery.replayed,
      fallback: delivery.fallback,
      replays,
      answeredWithReplay,
      preferredInstanceUnavailable: delivery.preferredInstanceUnavailable,
      replayCache: delivery.cacheStatus
    } satisfies RouteEvent)
  }

  /** The replay to act on; throws when it cannot be: invalid, answering a fallback, an unreplayable body, loop guard. */
  #checkReplayAnswer (exchange: Exchange, delivery: Delivery, machine: Machine, attempt: Attempt, replay: EdgeReplay | 'invalid', replays: number): EdgeReplay {
    if (replay === 'invalid') {
      throw new NAV_FLY_EDGE_INVALID_REPLAY(machine.id, String(attempt.res.headers['fly-replay'] ?? 'JSON body'))
    }
    if (delivery.fallback) throw new NAV_FLY_EDGE_REPLAY_ON_FALLBACK(machine.id)
    if (!exchange.replayable) {
      drainRefused(exchange.stream as http.IncomingMessage)
      this.#discard(attempt)
      throw new NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE(machine.id)
    }
    if (replays >= this.#maxReplays) throw new NAV_FLY_EDGE_TOO_MANY_REPLAYS(this.#maxReplays)
    return replay
  }

  /**
   * The first delivery of a request: the Machine of `fly-force-instance-id` (the client's explicit word wins), a
   * cached replay's target (a hit), the Machine of `fly-prefer-instance-id`, or the next started Machine of the
   * listener's app.
   */
  async #firstDelivery (exchange: Exchange): Promise<Outcome> {
    const forced = headerValue(exchange.headers['fly-force-instance-id'])
    if (forced !== undefined) return await this.#forcedDelivery(exchange, forced)
    const hit = await this.#cachedDelivery(exchange)
    if (hit !== null) return hit
    const app = exchange.listener.app
    const delivery: Delivery = { headers: exchange.headers, url: exchange.url, replayed: false, fallback: false }
    const deadline = Date.now() + this.#connectTimeoutMs
    const preferred = headerValue(exchange.headers['fly-prefer-instance-id'])
    if (preferred !== undefined && isValidMachineId(preferred)) {
      return { delivery, reach: await this.#reachPreferred(exchange, delivery, preferred, app, () => true, deadline, false) }
    }
    const first = this.#registry.candidates(app, () => true, this.#autostart)
    if (first.length === 0) throw new NAV_FLY_EDGE_NO_MACHINE(app)
    return { delivery, reach: await this.#reach(first, exchange, delivery, deadline, false) }
  }

  /**
   * A replay cache hit goes straight to the remembered target, with `fly-replay-cache-status: hit` and no
   * fly-replay-src. When that target cannot be reached the entry is dropped and the request goes to the app as if
   * nothing were cached: Fly calls the cache "an optimization, not a guarantee", and the app stays the source of truth.
   */
  async #cachedDelivery (exchange: Exchange): Promise<Outcome | null> {
    const match = exchange.cache
    const cached = match === null || match.bypass ? undefined : this.#cache.get(match.key)
    if (match === null || cached === undefined) return null
    const delivery: Delivery = {
      headers: { ...exchange.headers, 'fly-replay-cache-status': 'hit' }, url: exchange.url, replayed: false, fallback: false, cacheStatus: 'hit'
    }
    const reach = await this.#reachTarget(exchange, delivery, cached, cached.app ?? exchange.listener.app, null)
    if ('attempt' in reach || reach.failure === 'connected' || exchange.aborted || exchange.streamUsed) return { delivery, reach }
    this.#cache.delete(match.key)
    return null
  }

  /**
   * `fly-force-instance-id`: that Machine of the listener's app only, started if need be and tried until the connect
   * timeout; no fallback (https://fly.io/docs/networking/dynamic-request-routing/#the-fly-force-instance-id-header).
   */
  async #forcedDelivery (exchange: Exchange, id: string): Promise<Outcome> {
    const app = exchange.listener.app
    const machine = isValidMachineId(id) ? this.#registry.get(id) : undefined
    const named = JSON.stringify(id.slice(0, 64))
    if (machine === undefined || machine.app !== app) throw new NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE(named, `no such Machine in app ${app} (PR02, Machine not found)`)
    if (machine.state !== 'started' && !this.#autostart) {
      throw new NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE(named, `the Machine is ${machine.state} and autostart is off`)
    }
    const delivery: Delivery = { headers: exchange.headers, url: exchange.url, replayed: false, fallback: false }
    const reach = await this.#reach([machine], exchange, delivery, Date.now() + this.#connectTimeoutMs, true)
    if ('attempt' in reach || reach.failure === 'connected' || exchange.aborted) return { delivery, reach }
    throw new NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE(named, `not reachable (${reach.failure}; PR04, no candidate machines found after retries)`)
  }

  async #replay (exchange: Exchange, issuer: Machine, replay: EdgeReplay): Promise<Outcome> {
    const src = formatReplaySrc({ instance: issuer.id, region: issuer.region, state: replay.state }, Date.now() * 1000)
    const headers: http.OutgoingHttpHeaders = { ...exchange.headers, 'fly-replay-src': src }
    const cacheStatus = exchange.cache === null ? undefined : exchange.cache.bypass ? 'bypass' : 'miss'
    if (cacheStatus !== undefined) headers['fly-replay-cache-status'] = cacheStatus
    let url = exchange.url
    if (replay.transform !== undefined) {
      if (replay.transform.path !== undefined) url = replay.transform.path
      for (const name of replay.transform.deleteHeaders) delete headers[name]
      for (const { name, value } of replay.transform.setHeaders) headers[name] = value
    }
    const delivery: Delivery = { headers, url, replayed: true, fallback: false, cacheStatus }
    return { delivery, reach: await this.#reachTarget(exchange, delivery, replay, replay.app ?? issuer.app, issuer) }
  }

  /**
   * Remember the first delivery's replay answer once its target was reached, when the request carries a replay cache
   * rule's value and the answer may be cached; forget it when a Machine answers `fly-replay-cache: invalidate`. Only
   * one step is cached, as on Fly.
   */
  #remember (exchange: Exchange, delivery: Delivery, issuer: Machine, replay: EdgeReplay, reach: Reach): void {
    const match = exchange.cache
    if (match === null || match.bypass) return
    if (replay.cacheInvalidate === true) {
      this.#cache.delete(match.key)
      return
    }
    const first = !delivery.replayed && !delivery.fallback && delivery.cacheStatus === undefined
    if (first && 'attempt' in reach && isCacheableReplay(replay)) this.#cache.set(match, cachedTarget(replay, issuer.app))
  }

  /** The Machines a replay (or a cached one, without issuer) may go to, tried within the replay's timeout. */
  async #reachTarget (exchange: Exchange, delivery: Delivery, replay: EdgeReplay, app: string, issuer: Machine | null): Promise<Reach> {
    const deadline = Date.now() + (replay.timeoutMs ?? this.#replayTimeoutMs)
    const inRegion = (m: Machine): boolean => replay.regions === undefined || replay.regions.some((r) => regionMatches(r, m.region))
    const allowed = (m: Machine): boolean => inRegion(m) && !(replay.elsewhere && m === issuer)

    if (replay.instance !== undefined) {
      const target = this.#registry.get(replay.instance)
      const ok = target !== undefined && target.app === app && allowed(target) && (target.state === 'started' || this.#autostart)
      if (!ok) return { failure: 'no_candidate' }
      return await this.#reach([target], exchange, delivery, deadline, true)
    }
    if (replay.preferInstance !== undefined) {
      return await this.#reachPreferred(exchange, delivery, replay.preferInstance, app, allowed, deadline, true)
    }
    // Region preference order: every Machine of the first listed region, then the next.
    const ordered: Machine[] = []
    const pool = this.#registry.candidates(app, allowed, this.#autostart)
    for (const entry of replay.regions ?? ['any']) {
      for (const m of pool) if (!ordered.includes(m) && regionMatches(entry, m.region)) ordered.push(m)
    }
    return await this.#reach(ordered, exchange, delivery, deadline, true)
  }

  /**
   * `prefer_instance` and `fly-prefer-instance-id`: that Machine, woken if stopped or suspended, when it can be
   * reached before the deadline; else another allowed Machine, with `fly-preferred-instance-unavailable`. A wake that
   * uses up the deadline still leaves one pass over the other Machines, so a slow start never fails a request that a
   * running Machine can serve.
   */
  async #reachPreferred (exchange: Exchange, delivery: Delivery, id: string, app: string, allowed: (m: Machine) => boolean,
    deadline: number, persist: boolean): Promise<Reach> {
    const preferred = this.#registry.get(id)
    if (preferred !== undefined && preferred.app === app && allowed(preferred) && (preferred.state === 'started' || this.#autostart)) {
      const reach = await this.#reach([preferred], exchange, delivery, deadline, false)
      if ('attempt' in reach || reach.failure === 'connected' || exchange.aborted || exchange.streamUsed) return reach
    }
    delivery.preferredInstanceUnavailable = id
    delivery.headers = { ...delivery.headers, 'fly-preferred-instance-unavailable': id }
    const others = this.#registry.candidates(app, (m) => allowed(m) && m !== preferred, this.#autostart)
    const late = Date.now() >= deadline
    return await this.#reach(others, exchange, delivery, late ? Date.now() + this.#connectTimeoutMs : deadline, persist && !late)
  }

  /** Back to the issuer with fly-replay-failed (prefer_self: or another Machine of its app), or the replay's error. */
  async #fallback (exchange: Exchange, issuer: Machine, replay: EdgeReplay, failure: Failure, started: number): Promise<Outcome> {
    if (failure === 'connected' || replay.fallback === undefined) {
      throw new NAV_FLY_EDGE_UNREACHABLE(`the replay target ${describeTarget(replay, issuer)} (${failure})`)
    }
    const header = formatReplayFailed({
      instance: replay.instance ?? replay.preferInstance ?? '',
      app: replay.app ?? issuer.app,
      region: replay.regions?.join(',') ?? '',
      replaySource: issuer.id,
      reason: failure,
      elapsedMs: Date.now() - started
    })
    this.emit('replay-failed', { issuer: issuer.id, reason: failure, header } satisfies ReplayFailedEvent)
    const delivery: Delivery = { headers: { ...exchange.headers, 'fly-replay-failed': header }, url: exchange.url, replayed: false, fallback: true }
    const others = replay.fallback === 'prefer_self'
      ? this.#registry.candidates(issuer.app, (m) => m !== issuer, this.#autostart)
      : []
    return { delivery, reach: await this.#reach([issuer, ...others], exchange, delivery, Date.now() + this.#connectTimeoutMs, false) }
  }

  /**
   * Deliver to the first candidate that accepts a connection before the deadline. With `persist` (a replay target, a
   * forced instance) the candidates are tried again, with a growing pause, until the deadline: Fly's `timeout` is
   * "how long the proxy tries to reach the replay target". The failure is `timeout` when the deadline passed while the
   * edge was waiting (a start, a connection under way), `retries_exhausted` when every attempt until then was refused.
   */
  async #reach (candidates: Machine[], exchange: Exchange, delivery: Delivery, deadline: number, persist: boolean): Promise<Reach> {
    if (candidates.length === 0) return { failure: 'no_candidate' }
    let lastError: Error | undefined
    for (let pass = 1; ; pass++) {
      let tried = false
      for (const [index, machine] of candidates.entries()) {
        if (exchange.aborted) return { failure: 'retries_exhausted' }
        // A pass begins at the latest at the deadline (the pause before it is cut short); its first attempt is the last.
        if (index > 0 && Date.now() >= deadline) return { failure: lastError === undefined ? 'timeout' : 'retries_exhausted', error: lastError }
        if (machine.state !== 'started') {
          if (!this.#autostart) continue
          const started = await this.#startBefore(machine, deadline)
          if (started === 'timeout') return { failure: 'timeout' }
          if (started === 'failed') continue
        }
        tried = true
        const result = await this.#attempt(machine, exchange, delivery, deadline)
        if ('kind' in result) return { machine, attempt: result }
        lastError = result.error
        if (result.failure !== 'retries_exhausted' || exchange.streamUsed) return result
      }
      const remaining = deadline - Date.now()
      if (!persist || !tried || remaining <= 0) return { failure: 'retries_exhausted', error: lastError }
      await delay(Math.min(RETRY_BACKOFF_MS * pass, MAX_RETRY_BACKOFF_MS, remaining))
    }
  }

  async #startBefore (machine: Machine, deadline: number): Promise<'started' | 'timeout' | 'failed'> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now())) })
    const start = this.#transition(machine, 'started').then(() => 'started' as const, () => 'failed' as const)
    const result = await Promise.race([start, timeout])
    clearTimeout(timer)
    return result
  }

  #attempt (machine: Machine, exchange: Exchange, delivery: Delivery, deadline: number): Promise<Attempt | { failure: Failure, error: Error }> {
    return new Promise((resolve) => {
      let settled = false
      let connected = false
      const hostname = machine.url.hostname.replace(/^\[(.*)\]$/, '$1')
      const upstream = http.request({
        host: hostname,
        port: machine.url.port === '' ? 80 : Number(machine.url.port),
        method: exchange.method,
        path: delivery.url,
        headers: delivery.headers,
        agent: this.#agent,
        setHost: false
      })
      const timer = setTimeout(() => {
        if (connected) return
        const error = new Error(`connecting to ${machine.id} timed out`)
        finish({ failure: 'timeout', error })
        upstream.destroy(error)
      }, Math.max(MIN_CONNECT_WAIT_MS, deadline - Date.now()))
      const finish = (result: Attempt | { failure: Failure, error: Error }): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(result)
      }
      // A streamed body starts flowing only once the Machine accepted the connection: a refused connection leaves it
      // whole, so the next attempt or candidate can still take it.
      const onConnect = (): void => {
        connected = true
        clearTimeout(timer)
        if (exchange.stream === null) return
        exchange.streamUsed = true
        const stream = exchange.stream
        stream.pipe(upstream)
        // A client that goes away in the middle of its body ends the Machine's request too, as on Fly, rather than
        // leaving the Machine waiting on a kept-alive connection for bytes that will never come.
        stream.once('close', () => { if (!stream.complete) upstream.destroy() })
      }
      upstream.on('socket', (socket: Socket) => {
        if (!socket.connecting) onConnect()
        else socket.once('connect', onConnect)
      })
      upstream.on('response', (res) => { finish({ kind: 'response', res, request: upstream }) })
      upstream.on('upgrade', (res, socket: Socket, head: Buffer) => { finish({ kind: 'upgrade', res, socket, head }) })
      // A reset before any answer, on a request the edge can send again (its whole body is held), counts as a failed
      // connection: the next attempt or candidate gets it. Anything else is passed on as the Machine's error.
      const retryable = exchange.stream === null && IDEMPOTENT_METHODS.has(exchange.method)
      upstream.on('error', (error) => { finish({ failure: connected && !retryable ? 'connected' : 'retries_exhausted', error }) })
      if (exchange.stream === null) upstream.end(exchange.body ?? undefined)
    })
  }

  /** The replay instruction of a response, 'invalid', or null for an ordinary response. */
  async #readReplay (attempt: Attempt & { kind: 'response' }): Promise<EdgeReplay | 'invalid' | null> {
    const { res } = attempt
    const header = res.headers['fly-replay']
    const contentType = String(res.headers['content-type'] ?? '').toLowerCase()
    let replay: EdgeReplay | null
    if (header !== undefined) {
      res.resume()
      replay = parseReplayAnswer(String(header))
    } else if (contentType.startsWith(REPLAY_CONTENT_TYPE)) {
      const body = await this.#readReplayBody(attempt)
      replay = body === null ? null : parseReplayJson(body)
    } else {
      return null
    }
    if (replay === null) return 'invalid'
    if (String(res.headers['fly-replay-cache'] ?? '').trim().toLowerCase() === 'invalidate') replay.cacheInvalidate = true
    return replay
  }

  /** The JSON body of a replay answer, or null when it is larger than any replay instruction needs to be. */
  async #readReplayBody (attempt: Attempt & { kind: 'response' }): Promise<string | null> {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of attempt.res) {
      size += (chunk as Buffer).length
      if (size > MAX_REPLAY_JSON_BYTES) {
        attempt.request.destroy()
        return null
      }
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  #discard (attempt: Attempt): void {
    if (attempt.kind === 'upgrade') attempt.socket.destroy()
    else attempt.request.destroy()
  }

  #relay (exchange: Exchange, attempt: Attempt): void {
    const { res } = attempt
    const status = res.statusCode ?? 502
    if (exchange.websocket === null) {
      const response = exchange.response as http.ServerResponse
      if (attempt.kind !== 'response') return
      response.writeHead(status, res.statusMessage, forwardableRawHeaders(res.rawHeaders, false))
      res.on('error', () => response.destroy())
      response.on('close', () => { if (!res.complete) attempt.request.destroy() })
      res.pipe(response)
      return
    }
    const client = exchange.websocket.socket
    if (attempt.kind === 'upgrade') {
      const upstream = attempt.socket
      this.#tunnels.add(upstream)
      client.write(rawHead(status, res.statusMessage ?? 'Switching Protocols', forwardableRawHeaders(res.rawHeaders, true)))
      if (attempt.head.length > 0) client.write(attempt.head)
      if (exchange.websocket.head.length > 0) upstream.write(exchange.websocket.head)
      upstream.on('error', () => client.destroy())
      client.on('error', () => upstream.destroy())
      upstream.on('close', () => { this.#tunnels.delete(upstream); client.destroy() })
      client.on('close', () => upstream.destroy())
      upstream.pipe(client)
      client.pipe(upstream)
      return
    }
    // The Machine refused the upgrade with an ordinary response: pass it on, then close.
    const headers = forwardableRawHeaders(res.rawHeaders, false)
    headers.push('Connection', 'close')
    client.write(rawHead(status, res.statusMessage ?? '', headers))
    res.on('error', () => client.destroy())
    res.pipe(client)
  }

  #fail (exchange: Exchange, err: EdgeError): void {
    const statusCode = err.statusCode ?? 502
    const code = err.code ?? 'NAV_FLY_EDGE_ERROR'
    this.emit('edge-error', { code, statusCode, message: err.message } satisfies EdgeErrorEvent)
    const body = `${code}: ${err.message}\n`
    if (exchange.websocket !== null) {
      const socket = exchange.websocket.socket
      if (!socket.writable) return
      socket.end(rawHead(statusCode, http.STATUS_CODES[statusCode] ?? 'Error', [
        'Content-Type', 'text/plain; charset=utf-8',
        'Content-Length', String(Buffer.byteLength(body)),
        'Fly-Edge-Error', code,
        'Connection', 'close'
      ]) + body)
      return
    }
    const response = exchange.response as http.ServerResponse
    if (response.headersSent) {
      response.destroy()
      return
    }
    if (exchange.stream !== null && !exchange.stream.complete) {
      // The rest of a body no Machine will take is read and dropped, and the connection kept, so that the client gets
      // this answer: closing at once would reset the connection under a client still sending, which could lose it.
      drainRefused(exchange.stream)
    }
    response.writeHead(statusCode, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'fly-edge-error': code
    })
    response.end(body)
  }
}

/** How long the rest of a refused body is read and dropped before its connection is closed under the client. */
const DRAIN_LIMIT_MS = 10_000

/** Reads and drops the rest of a request body no Machine will take, for at most DRAIN_LIMIT_MS. */
function drainRefused (stream: http.IncomingMessage): void {
  stream.unpipe()
  stream.resume()
  if (stream.complete) return
  const limit = setTimeout(() => { stream.socket?.destroy() }, DRAIN_LIMIT_MS)
  limit.unref()
  stream.once('close', () => { clearTimeout(limit) })
}

function describeTarget (replay: EdgeReplay, issuer: Machine): string {
  if (replay.instance !== undefined) return `instance ${replay.instance}`
  if (replay.preferInstance !== undefined) return `prefer_instance ${replay.preferInstance}`
  if (replay.regions !== undefined) return `region ${replay.regions.join(',')} of app ${replay.app ?? issuer.app}`
  return `app ${replay.app ?? issuer.app}`
}
