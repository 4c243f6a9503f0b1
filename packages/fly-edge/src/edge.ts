import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import {
  NAV_FLY_EDGE_INVALID_OPTION,
  NAV_FLY_EDGE_INVALID_REPLAY,
  NAV_FLY_EDGE_NO_MACHINE,
  NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE,
  NAV_FLY_EDGE_REPLAY_ON_FALLBACK,
  NAV_FLY_EDGE_TOO_MANY_REPLAYS,
  NAV_FLY_EDGE_UNKNOWN_MACHINE,
  NAV_FLY_EDGE_UNREACHABLE
} from './errors.js'
import {
  isValidAppName,
  MachineRegistry,
  type Machine,
  type MachineLauncher,
  type MachineSpec,
  type MachineState
} from './machines.js'
import { regionMatches } from './regions.js'
import { isReplayable } from '@navigator/fly-replay'
import {
  formatReplayFailed,
  formatReplaySrc,
  parseReplayAnswer,
  parseReplayJson,
  REPLAY_CONTENT_TYPE,
  type EdgeReplay,
  type ReplayFailureReason
} from './replay.js'

/** At most this many replays per request; the next fly-replay answer is an error. */
export const DEFAULT_MAX_REPLAYS = 10
/** How long a replay tries its target when the fly-replay answer names no `timeout`. */
export const DEFAULT_REPLAY_TIMEOUT_MS = 5_000
/** How long a first delivery (and a fallback) tries to connect, autostart included. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** Connection attempts on one target Machine before `retries_exhausted`. */
export const CONNECT_ATTEMPTS = 3
const RETRY_BACKOFF_MS = 50
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
// Headers only the edge may set: a client cannot forge a replay's provenance.
const EDGE_HEADERS = new Set(['fly-replay-src', 'fly-replay-failed', 'fly-preferred-instance-unavailable'])

export interface FlyEdgeOptions {
  /** The app new requests are balanced over. */
  app: string
  machines: MachineSpec[]
  /** Port, or host and port; default 127.0.0.1 and a free port. */
  listen?: number | { host?: string, port?: number }
  /** Starts, stops, suspends and resumes the Machines' processes. */
  launcher?: MachineLauncher
  /** Start a stopped (resume a suspended) Machine that a request needs; default true, like Fly's auto_start_machines. */
  autostart?: boolean
  maxReplays?: number
  /** Used when a fly-replay answer has no `timeout`. */
  replayTimeoutMs?: number
  connectTimeoutMs?: number
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
  /** This delivery is a replay (fly-replay-src was added). */
  replayed: boolean
  /** This delivery is a fallback to the issuer (fly-replay-failed was added). */
  fallback: boolean
  /** Replays so far for this request. */
  replays: number
  /** The Machine answered this delivery with fly-replay. */
  answeredWithReplay: boolean
  preferredInstanceUnavailable?: string
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

interface Exchange {
  method: string
  url: string
  headers: http.OutgoingHttpHeaders
  /** Buffered body of a replayable request (null: no body). */
  body: Buffer | null
  /** Streamed body of a request that cannot be replayed. */
  stream: http.IncomingMessage | null
  replayable: boolean
  websocket: { socket: Duplex, head: Buffer } | null
  response: http.ServerResponse | null
  aborted: boolean
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
}

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

/**
 * A local stand-in for Fly's edge proxy: balances new requests across started
 * Machines and honours their fly-replay answers the way Fly's proxy does.
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
  readonly #server: http.Server
  readonly #agent = new http.Agent({ keepAlive: false })
  readonly #tunnels = new Set<Duplex>()
  readonly #transitions = new Map<string, Promise<void>>()
  #address: AddressInfo | null = null

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
    this.#server = http.createServer((req, res) => { this.#onRequest(req, res) })
    this.#server.on('upgrade', (req, socket, head) => { this.#onUpgrade(req, socket, head) })
    this.#server.on('clientError', (_err, socket) => { socket.destroy() })
  }

  async listen (): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#listen.port, this.#listen.host, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    this.#address = this.#server.address() as AddressInfo
    return this.url
  }

  /** The edge's base URL, e.g. http://127.0.0.1:8080 (after listen()). */
  get url (): string {
    if (this.#address === null) throw new NAV_FLY_EDGE_INVALID_OPTION('the edge is not listening yet')
    const host = this.#address.family === 'IPv6' ? `[${this.#address.address}]` : this.#address.address
    return `http://${host}:${this.#address.port}`
  }

  get port (): number {
    return this.#address?.port ?? 0
  }

  async close (): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeAllConnections()
    for (const socket of this.#tunnels) socket.destroy()
    this.#agent.destroy()
    if (this.#server.listening) await closed
  }

  machine (id: string): Readonly<Machine> | undefined {
    return this.#registry.get(id)
  }

  machines (app?: string): Array<Readonly<Machine>> {
    return this.#registry.list(app)
  }

  addMachine (spec: MachineSpec): Readonly<Machine> {
    return this.#registry.add(spec)
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

  #known (id: string): Machine {
    const machine = this.#registry.get(id)
    if (machine === undefined) throw new NAV_FLY_EDGE_UNKNOWN_MACHINE(id)
    return machine
  }

  // One state change at a time per Machine; concurrent requests that need a Machine
  // started wait for the same transition.
  #transition (machine: Machine, to: MachineState): Promise<void> {
    const previous = this.#transitions.get(machine.id) ?? Promise.resolve()
    const next = previous.catch(() => {}).then(async () => {
      if (machine.state === to) return
      const from = machine.state
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
      this.emit('machine', { id: machine.id, app: machine.app, from, state: to })
    })
    this.#transitions.set(machine.id, next)
    const cleanup = (): void => {
      if (this.#transitions.get(machine.id) === next) this.#transitions.delete(machine.id)
    }
    next.then(cleanup, cleanup)
    return next
  }

  #exchangeFrom (req: http.IncomingMessage): Omit<Exchange, 'body' | 'stream' | 'replayable' | 'websocket' | 'response'> {
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
    headers['x-forwarded-port'] = String(this.port)
    headers['fly-client-ip'] = clientIp
    headers['fly-forwarded-port'] = String(this.port)
    headers.via = '1.1 fly-edge'
    return { method: req.method ?? 'GET', url: req.url ?? '/', headers, aborted: false }
  }

  #onRequest (req: http.IncomingMessage, res: http.ServerResponse): void {
    const base = this.#exchangeFrom(req)
    const length = req.headers['content-length']
    const chunked = req.headers['transfer-encoding'] !== undefined
    const size = length === undefined ? 0 : Number(length)
    const replayable = isReplayable(req.headers)
    if (chunked) base.headers['transfer-encoding'] = 'chunked'
    const exchange: Exchange = {
      ...base, body: null, stream: replayable ? null : req, replayable, websocket: null, response: res
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

  #onUpgrade (req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const base = this.#exchangeFrom(req)
    base.headers.connection = 'Upgrade'
    base.headers.upgrade = req.headers.upgrade ?? 'websocket'
    const exchange: Exchange = {
      ...base, body: null, stream: null, replayable: true, websocket: { socket, head }, response: null
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
    const first = this.#registry.candidates(this.app, () => true, this.#autostart)
    if (first.length === 0) throw new NAV_FLY_EDGE_NO_MACHINE(this.app)
    let delivery: Delivery = { headers: exchange.headers, url: exchange.url, replayed: false, fallback: false }
    let reach = await this.#reach(first, exchange, delivery, Date.now() + this.#connectTimeoutMs, 1)
    let replays = 0
    for (;;) {
      if (exchange.aborted) {
        if ('attempt' in reach) this.#discard(reach.attempt)
        return
      }
      if (!('attempt' in reach)) throw new NAV_FLY_EDGE_UNREACHABLE(`a Machine of app ${this.app} (${reach.failure})`)
      const { machine, attempt } = reach
      const replay = attempt.kind === 'response' ? await this.#readReplay(attempt) : null
      this.emit('route', {
        machineId: machine.id,
        app: machine.app,
        region: machine.region,
        method: exchange.method,
        url: delivery.url,
        status: attempt.res.statusCode ?? 0,
        websocket: exchange.websocket !== null,
        replayed: delivery.replayed,
        fallback: delivery.fallback,
        replays,
        answeredWithReplay: replay !== null,
        preferredInstanceUnavailable: delivery.preferredInstanceUnavailable
      } satisfies RouteEvent)
      if (replay === null) {
        this.#relay(exchange, attempt)
        return
      }
      if (replay === 'invalid') {
        throw new NAV_FLY_EDGE_INVALID_REPLAY(machine.id, String(attempt.res.headers['fly-replay'] ?? 'JSON body'))
      }
      if (delivery.fallback) throw new NAV_FLY_EDGE_REPLAY_ON_FALLBACK(machine.id)
      if (!exchange.replayable) {
        const stream = exchange.stream as http.IncomingMessage
        stream.unpipe()
        stream.resume()
        this.#discard(attempt)
        throw new NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE(machine.id)
      }
      if (replays >= this.#maxReplays) throw new NAV_FLY_EDGE_TOO_MANY_REPLAYS(this.#maxReplays)
      replays++
      this.emit('replay', { issuer: machine.id, replay, replays })
      const started = Date.now()
      const outcome = await this.#replay(exchange, machine, replay)
      delivery = outcome.delivery
      reach = outcome.reach
      if ('attempt' in reach || exchange.aborted) continue
      if (reach.failure === 'connected' || replay.fallback === undefined) {
        throw new NAV_FLY_EDGE_UNREACHABLE(`the replay target ${describeTarget(replay, machine)} (${reach.failure})`)
      }
      const header = formatReplayFailed({
        instance: replay.instance ?? replay.preferInstance ?? '',
        app: replay.app ?? machine.app,
        region: replay.regions?.join(',') ?? '',
        replaySource: machine.id,
        reason: reach.failure,
        elapsedMs: Date.now() - started
      })
      this.emit('replay-failed', { issuer: machine.id, reason: reach.failure, header } satisfies ReplayFailedEvent)
      delivery = {
        headers: { ...exchange.headers, 'fly-replay-failed': header },
        url: exchange.url,
        replayed: false,
        fallback: true
      }
      const self = [machine]
      const others = replay.fallback === 'prefer_self'
        ? this.#registry.candidates(machine.app, (m) => m !== machine, this.#autostart)
        : []
      reach = await this.#reach([...self, ...others], exchange, delivery, Date.now() + this.#connectTimeoutMs, 1)
    }
  }

  async #replay (exchange: Exchange, issuer: Machine, replay: EdgeReplay): Promise<{ delivery: Delivery, reach: Reach }> {
    const app = replay.app ?? issuer.app
    const src = formatReplaySrc({ instance: issuer.id, region: issuer.region, state: replay.state }, Date.now() * 1000)
    const headers: http.OutgoingHttpHeaders = { ...exchange.headers, 'fly-replay-src': src }
    let url = exchange.url
    if (replay.transform !== undefined) {
      if (replay.transform.path !== undefined) url = replay.transform.path
      for (const name of replay.transform.deleteHeaders) delete headers[name]
      for (const { name, value } of replay.transform.setHeaders) headers[name] = value
    }
    const delivery: Delivery = { headers, url, replayed: true, fallback: false }
    const deadline = Date.now() + (replay.timeoutMs ?? this.#replayTimeoutMs)
    const inRegion = (m: Machine): boolean => replay.regions === undefined || replay.regions.some((r) => regionMatches(r, m.region))
    const allowed = (m: Machine): boolean => inRegion(m) && !(replay.elsewhere && m === issuer)
    const startable = (m: Machine): boolean => m.state === 'started' || this.#autostart

    if (replay.instance !== undefined) {
      const target = this.#registry.get(replay.instance)
      const ok = target !== undefined && target.app === app && allowed(target) && startable(target)
      if (!ok) return { delivery, reach: { failure: 'no_candidate' } }
      return { delivery, reach: await this.#reach([target], exchange, delivery, deadline, CONNECT_ATTEMPTS) }
    }

    if (replay.preferInstance !== undefined) {
      const preferred = this.#registry.get(replay.preferInstance)
      if (preferred !== undefined && preferred.app === app && allowed(preferred) && startable(preferred)) {
        const reach = await this.#reach([preferred], exchange, delivery, deadline, CONNECT_ATTEMPTS)
        if ('attempt' in reach || reach.failure === 'connected' || exchange.aborted) return { delivery, reach }
      }
      delivery.preferredInstanceUnavailable = replay.preferInstance
      delivery.headers = { ...headers, 'fly-preferred-instance-unavailable': replay.preferInstance }
      const others = this.#registry.candidates(app, (m) => allowed(m) && m.id !== replay.preferInstance, this.#autostart)
      return { delivery, reach: await this.#reach(others, exchange, delivery, deadline, 1) }
    }

    // Region preference order: every Machine of the first listed region, then the next.
    const ordered: Machine[] = []
    const pool = this.#registry.candidates(app, allowed, this.#autostart)
    for (const entry of replay.regions ?? ['any']) {
      for (const m of pool) if (!ordered.includes(m) && regionMatches(entry, m.region)) ordered.push(m)
    }
    return { delivery, reach: await this.#reach(ordered, exchange, delivery, deadline, 1) }
  }

  /** Deliver to the first candidate that accepts a connection before the deadline. */
  async #reach (candidates: Machine[], exchange: Exchange, delivery: Delivery, deadline: number, attemptsEach: number): Promise<Reach> {
    if (candidates.length === 0) return { failure: 'no_candidate' }
    let lastError: Error | undefined
    for (const machine of candidates) {
      for (let attempt = 0; attempt < attemptsEach; attempt++) {
        if (exchange.aborted) return { failure: 'retries_exhausted' }
        if (Date.now() >= deadline) return { failure: 'timeout', error: lastError }
        if (machine.state !== 'started') {
          if (!this.#autostart) break
          const started = await this.#startBefore(machine, deadline)
          if (started === 'timeout') return { failure: 'timeout' }
          if (started === 'failed') break
        }
        const result = await this.#attempt(machine, exchange, delivery, deadline)
        if ('kind' in result) return { machine, attempt: result }
        lastError = result.error
        if (result.failure !== 'retries_exhausted') return result
        // A streamed body was already (partly) consumed: it cannot go anywhere else.
        if (exchange.stream !== null) return result
        if (attempt + 1 < attemptsEach) await delay(Math.min(RETRY_BACKOFF_MS * (attempt + 1), Math.max(0, deadline - Date.now())))
      }
    }
    return { failure: 'retries_exhausted', error: lastError }
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
      }, Math.max(0, deadline - Date.now()))
      const finish = (result: Attempt | { failure: Failure, error: Error }): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(result)
      }
      upstream.on('socket', (socket: Socket) => {
        if (!socket.connecting) connected = true
        else socket.once('connect', () => { connected = true; clearTimeout(timer) })
      })
      upstream.on('response', (res) => { finish({ kind: 'response', res, request: upstream }) })
      upstream.on('upgrade', (res, socket: Socket, head: Buffer) => { finish({ kind: 'upgrade', res, socket, head }) })
      // A reset before any answer, on a request the edge can send again (its whole body is held), counts as a failed
      // connection: the next attempt or candidate gets it. Anything else is passed on as the Machine's error.
      const retryable = exchange.stream === null && IDEMPOTENT_METHODS.has(exchange.method)
      upstream.on('error', (error) => { finish({ failure: connected && !retryable ? 'connected' : 'retries_exhausted', error }) })
      if (exchange.stream !== null) {
        exchange.stream.pipe(upstream)
      } else {
        upstream.end(exchange.body ?? undefined)
      }
    })
  }

  /** The replay instruction of a response, 'invalid', or null for an ordinary response. */
  async #readReplay (attempt: Attempt & { kind: 'response' }): Promise<EdgeReplay | 'invalid' | null> {
    const { res } = attempt
    const header = res.headers['fly-replay']
    const contentType = String(res.headers['content-type'] ?? '').toLowerCase()
    if (header !== undefined) {
      res.resume()
      return parseReplayAnswer(String(header)) ?? 'invalid'
    }
    if (!contentType.startsWith(REPLAY_CONTENT_TYPE)) return null
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res) {
      size += (chunk as Buffer).length
      if (size > MAX_REPLAY_JSON_BYTES) {
        attempt.request.destroy()
        return 'invalid'
      }
      chunks.push(chunk as Buffer)
    }
    return parseReplayJson(Buffer.concat(chunks).toString('utf8')) ?? 'invalid'
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
      // Stop reading a body no Machine will take.
      response.setHeader('Connection', 'close')
    }
    response.writeHead(statusCode, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'fly-edge-error': code
    })
    response.end(body)
  }
}

function describeTarget (replay: EdgeReplay, issuer: Machine): string {
  if (replay.instance !== undefined) return `instance ${replay.instance}`
  if (replay.preferInstance !== undefined) return `prefer_instance ${replay.preferInstance}`
  if (replay.regions !== undefined) return `region ${replay.regions.join(',')} of app ${replay.app ?? issuer.app}`
  return `app ${replay.app ?? issuer.app}`
}
