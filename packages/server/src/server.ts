import { writeSync } from 'node:fs'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { createServer as createNetServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { parseDuration } from '@navigator/config'
import type { NavigatorConfig } from '@navigator/config'
import { createUpstreamProxy } from '@navigator/fly-replay'
import type { UpstreamProxy } from '@navigator/fly-replay'
import { MachineIdle, settlesWithin, Supervisor } from '@navigator/supervisor'
import { createMaintenanceResponder, loadMaintenancePage } from './maintenance.js'
import { isHealthCheckUrl, pipeline } from './pipeline.js'
import type { Identity, ProcessManager } from './pipeline.js'
import { InvalidLogLevelError, InvalidUpstreamTimeoutError } from './errors.js'
import { WebSocketRelay } from './websocket.js'

/** Level used when LOG_LEVEL is not set. */
export const DEFAULT_LOG_LEVEL = 'info'
/** Values LOG_LEVEL may take (pino's levels). */
export const LOG_LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']
/** Idle keep-alive connections are closed after this long (above the 60 s of common load balancers). */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000
/**
 * A client must have sent its complete request headers this long after it connected (or after its previous
 * request on a kept-alive connection); a slowloris client trickling header bytes is cut off with 408.
 */
export const HEADERS_TIMEOUT_MS = 20_000
/**
 * A client must have sent its whole request, body included, within this long (Node's own default): a client that
 * trickles a body cannot hold a connection, and an upstream, forever. Responses are not limited by it.
 */
export const REQUEST_TIMEOUT_MS = 300_000
/** How often the two limits above are checked; a slow client is cut off at most this long after its limit. */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1_000
/**
 * How long a proxied request waits for the upstream's response headers before the client gets a 504. There is no
 * config key for it (the Go Navigator has none); NAVIGATOR_UPSTREAM_TIMEOUT (a Go duration) or the
 * `upstreamTimeoutMs` option changes it.
 */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000

export interface BuildServerOptions {
  /** Environment for identity (FLY_MACHINE_ID, FLY_APP_NAME, FLY_REGION), LOG_LEVEL and the children; default process.env. */
  env?: NodeJS.ProcessEnv
  /** A pino logger to use instead of building one from LOG_LEVEL. */
  logger?: FastifyBaseLogger
  /** Wait for an upstream's response headers, then 504; default NAVIGATOR_UPSTREAM_TIMEOUT, else DEFAULT_UPSTREAM_TIMEOUT_MS. */
  upstreamTimeoutMs?: number
}

export interface NavigatorServer {
  /** The Fastify instance currently answering (a reload replaces it). */
  readonly fastify: FastifyInstance
  readonly supervisor: Supervisor
  /** The one http server; it outlives reloads. */
  readonly server: Server
  readonly config: NavigatorConfig
  readonly log: FastifyBaseLogger
  /** Starts the supervisor and listens on server.listen; resolves with the address, e.g. http://127.0.0.1:3000. */
  listen (): Promise<string>
  /** Swaps in a new config without dropping a request or a WebSocket. */
  reload (config: NavigatorConfig): Promise<void>
  /** Stops accepting, drains requests up to shutdown_timeout, closes WebSockets with 1001, stops the children. */
  close (): Promise<void>
}

/**
 * A minor garbage collection runs every this many bytes of proxied request bodies, so that dead body chunks do not
 * pile up: a 200 MiB upload grew the process by a median 0.4 MiB with 4 MiB here, 2.2 MiB with 16 MiB, and about
 * twice that with none (bench/upload.mjs; figures in bench/README.md). A scavenge of a young generation holding
 * little live data takes a fraction of a millisecond; the upload's throughput did not change measurably.
 */
export const UPLOAD_BYTES_PER_MINOR_GC = 4 * 1024 * 1024

/** At shutdown, how long the upstream connections get to close before the children are stopped regardless. */
export const UPSTREAM_CLOSE_WAIT_MS = 1_000

/** The generation that answers a response, set on the ServerResponse itself. */
const kGeneration = Symbol('navigator.generation')
/** Set on a response whose request counts for the Machine's idleness (every request but a health check). */
const kIdleCounted = Symbol('navigator.idleCounted')

/** One Fastify instance per config generation; the previous one is closed once its last request is done. */
interface Generation {
  app: FastifyInstance
  inFlight: number
  retired: boolean
}

export function identityFrom (env: NodeJS.ProcessEnv): Identity {
  return {
    machineId: nonEmpty(env.FLY_MACHINE_ID),
    appName: nonEmpty(env.FLY_APP_NAME),
    region: nonEmpty(env.FLY_REGION)
  }
}

function nonEmpty (value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value
}

/**
 * The hot path stays quiet: no "incoming request" / "request completed" lines.
 * On Fly (a Machine ID is set) every request arrives through Fly's proxy or a
 * peer on the private network, so their X-Forwarded-Proto/-Host/-For are
 * trusted and passed on to the apps; elsewhere a client could forge them.
 */
function fastifyOptions (logger: object, identity: Identity): object {
  return {
    ...logger,
    trustProxy: identity.machineId !== null,
    logController: new LogController({ disableRequestLogging: true })
  }
}

function loggerOptions (env: NodeJS.ProcessEnv): object {
  const level = nonEmpty(env.LOG_LEVEL)?.toLowerCase() ?? DEFAULT_LOG_LEVEL
  if (!LOG_LEVELS.includes(level)) throw new InvalidLogLevelError(LOG_LEVELS.join(', '), JSON.stringify(env.LOG_LEVEL))
  // JSON lines for machines, readable lines for a person at a terminal.
  if (process.stdout.isTTY === true) {
    // Loaded only for a terminal: pino-pretty costs about 10 MiB of memory that a server on Fly never needs.
    const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => object
    return { level, stream: pretty({ colorize: true, sync: true }) }
  }
  return { level, stream: batchedStdout() }
}

/** Log lines wait at most this long before they are written (a SIGKILL loses at most this much). */
export const LOG_FLUSH_INTERVAL_MS = 10

/**
 * JSON log lines go to stdout in batches: the lines of up to LOG_FLUSH_INTERVAL_MS leave in one write (at once
 * when 64 KiB are pending), and what is pending is written synchronously at exit. Under load this replaces a write
 * system call per line (the info line of every sticky replay) with one per interval; flushing at the end of every
 * turn of the event loop instead cost about 1.5 µs per replay answer (a setImmediate and a write per turn).
 */
class BatchedStdout {
  private pending = ''
  private timer: NodeJS.Timeout | null = null
  private readonly flushSoon = (): void => {
    this.timer = null
    this.flush()
  }

  write (line: string): boolean {
    this.pending += line
    if (this.pending.length >= 65_536) this.flush()
    else if (this.timer === null) {
      this.timer = setTimeout(this.flushSoon, LOG_FLUSH_INTERVAL_MS)
      // Pending lines never keep the process alive: the exit handler writes them.
      this.timer.unref()
    }
    return true
  }

  flush (): void {
    if (this.pending === '') return
    let buffer = Buffer.from(this.pending)
    this.pending = ''
    while (buffer.length > 0) {
      try {
        buffer = buffer.subarray(writeSync(1, buffer))
      } catch (err) {
        // A non-blocking pipe that is full: wait a millisecond and go on; anything else (EPIPE): the lines are lost.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
      }
    }
  }
}

let stdoutLines: BatchedStdout | null = null

function batchedStdout (): BatchedStdout {
  if (stdoutLines === null) {
    const lines = new BatchedStdout()
    process.once('exit', () => { lines.flush() })
    stdoutLines = lines
  }
  return stdoutLines
}

/**
 * The replay and sticky plugins need the port this Navigator listens on (peers
 * are reached on it), before it listens. For `listen: 0` a free port is picked
 * up front, so the plugins and the socket agree.
 */
async function concretePort (host: string, port: number): Promise<number> {
  if (port !== 0) return port
  return await new Promise((resolve, reject) => {
    const probe = createNetServer()
    probe.once('error', reject)
    probe.listen({ host, port: 0 }, () => {
      const chosen = (probe.address() as AddressInfo).port
      probe.close(() => { resolve(chosen) })
    })
  })
}

function upstreamTimeout (option: number | undefined, env: NodeJS.ProcessEnv): number {
  if (option !== undefined) {
    if (!Number.isFinite(option) || option <= 0) throw new InvalidUpstreamTimeoutError(String(option))
    return option
  }
  const text = nonEmpty(env.NAVIGATOR_UPSTREAM_TIMEOUT)
  if (text === null) return DEFAULT_UPSTREAM_TIMEOUT_MS
  let ms: number
  try {
    ms = parseDuration(text)
  } catch {
    throw new InvalidUpstreamTimeoutError(JSON.stringify(text))
  }
  if (ms <= 0) throw new InvalidUpstreamTimeoutError(JSON.stringify(text))
  return ms
}

function logRequest (request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request completed')
  done()
}

/** The answer to a request Node's parser refused, as Node itself would give it (431 and 408 keep their meaning). */
function clientErrorResponse (code: string | undefined): string {
  const status = code === 'HPE_HEADER_OVERFLOW'
    ? '431 Request Header Fields Too Large'
    : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
  return `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`
}

function connectableAddress (server: Server): string {
  const address = server.address() as AddressInfo
  const host = address.address === '::' || address.address === '0.0.0.0' ? '127.0.0.1' : address.address
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
}

export async function buildServer (config: NavigatorConfig, options: BuildServerOptions = {}): Promise<NavigatorServer> {
  const env = options.env ?? process.env
  const identity = identityFrom(env)
  const headersTimeoutMs = upstreamTimeout(options.upstreamTimeoutMs, env)
  const listenHost = config.server.listen.host
  const listenPort = await concretePort(listenHost, config.server.listen.port)

  const first = options.logger === undefined
    ? Fastify(fastifyOptions({ logger: loggerOptions(env) }, identity))
    : Fastify(fastifyOptions({ loggerInstance: options.logger }, identity))
  const log = first.log

  const supervisor = new Supervisor({ applications: config.applications, logger: log, env })
  const proxy: UpstreamProxy = createUpstreamProxy({
    headersTimeoutMs,
    collectEveryBodyBytes: UPLOAD_BYTES_PER_MINOR_GC,
    // The same condition as Fastify's trustProxy: off Fly a client could forge X-Forwarded-*.
    trustForwarded: identity.machineId !== null
  })
  const webSockets = new WebSocketRelay({ log })
  const machineIdle = config.server.idle === null || identity.machineId === null || identity.appName === null
    ? null
    : new MachineIdle({ ...config.server.idle, machineId: identity.machineId, appName: identity.appName, logger: log })

  if (config.server.idle !== null && machineIdle === null) {
    log.warn('FLY_MACHINE_ID or FLY_APP_NAME is not set: server.idle is off')
  }

  // Open WebSockets count for both the process (idle tenant stop) and the Machine (idle suspend).
  const processes: ProcessManager = {
    ensureTenant: async (name) => await supervisor.ensureTenant(name),
    // The hot path's synchronous check: a ready tenant is proxied without a promise.
    readyPort (name) {
      try {
        const status = supervisor.tenantStatus(name)
        return status.state === 'ready' ? status.port : null
      } catch {
        return null // an unknown tenant (a reload removed it): ensureTenant says why
      }
    },
    standaloneStatus: (name) => supervisor.standaloneStatus(name),
    trackRequest: (name) => supervisor.trackRequest(name),
    trackWebSocket (name) {
      const release = supervisor.trackWebSocket(name)
      if (machineIdle === null) return release
      const idle = machineIdle
      idle.webSocketOpened()
      return () => {
        release()
        idle.webSocketClosed()
      }
    }
  }

  let currentConfig = config
  let closing = false
  let inFlight = 0
  let drained: (() => void) | null = null

  async function prepare (app: FastifyInstance, next: NavigatorConfig): Promise<Generation> {
    const maintenance = createMaintenanceResponder(loadMaintenancePage(next.server, log))
    await app.register(pipeline, {
      config: next,
      processes,
      proxy,
      maintenance,
      webSockets,
      identity,
      port: listenPort
    })
    // Per-request lines only when asked for: at info and above the hot path logs nothing.
    if (log.level === 'debug' || log.level === 'trace') app.addHook('onResponse', logRequest)
    await app.ready()
    return { app, inFlight: 0, retired: false }
  }

  let current = await prepare(first, config)

  function retire (generation: Generation): void {
    generation.app.close().catch((err: Error) => { log.error({ err }, 'closing the previous configuration failed') })
  }

  function finished (generation: Generation): void {
    generation.inFlight--
    inFlight--
    if (generation.retired && generation.inFlight === 0) retire(generation)
    if (inFlight === 0 && drained !== null) drained()
  }

  // One listener for every response (no closure per request): the generation rides on the response.
  function onResponseClosed (this: ServerResponse & { [kGeneration]?: Generation, [kIdleCounted]?: true }): void {
    if (this[kIdleCounted] === true) machineIdle?.requestFinished()
    finished(this[kGeneration] as Generation)
  }

  function onRequest (req: IncomingMessage, res: ServerResponse & { [kGeneration]?: Generation, [kIdleCounted]?: true }): void {
    const generation = current
    generation.inFlight++
    inFlight++
    // Health checks are no traffic: Fly polls them every 15 s, and counted they would keep the Machine awake.
    if (machineIdle !== null && !isHealthCheckUrl(req.url, currentConfig.server.healthCheck)) {
      machineIdle.requestStarted()
      res[kIdleCounted] = true
    }
    // While draining, answered connections are closed rather than kept alive.
    if (closing) res.shouldKeepAlive = false
    res[kGeneration] = generation
    res.on('close', onResponseClosed)
    const app = generation.app
    if (!app.navigatorFastPath(req, res)) app.routing(req, res)
  }

  const server = createServer({
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS
  }, onRequest)
  server.on('upgrade', (req, socket, head) => {
    if (closing) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    // A pending upgrade counts as in flight for its generation (a reload does not retire the generation under
    // it, and SIGTERM's drain waits for it) until its handshake settles: the client socket gets its 101 (the
    // relay then counts as a WebSocket), or the socket is ended or closed (a refusal, an error, a client gone).
    const generation = current
    generation.inFlight++
    inFlight++
    let pending = true
    const settle = (): void => {
      if (!pending) return
      pending = false
      socket.removeListener('finish', settle)
      socket.removeListener('close', settle)
      finished(generation)
    }
    socket.once('finish', settle)
    socket.once('close', settle)
    webSockets.route(generation.app, req, socket, head, settle)
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // A response already under way on this connection (a pipelined request after it failed to parse) must not
    // get a second status line in the middle of its body: the connection is dropped instead.
    const answering = (socket as { _httpMessage?: ServerResponse | null })._httpMessage
    if (socket.writable && (answering == null || !answering.headersSent)) socket.end(clientErrorResponse(err.code))
    else socket.destroy()
    log.debug({ err: err.message, code: err.code }, 'client error')
  })

  async function listen (): Promise<string> {
    await supervisor.start()
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host: listenHost, port: listenPort }, () => {
          server.removeListener('error', reject)
          resolve()
        })
      })
    } catch (err) {
      // Nothing may outlive a failed start: the children started above are stopped.
      await supervisor.stop()
      throw err
    }
    machineIdle?.start()
    const address = connectableAddress(server)
    log.info({ address }, 'listening')
    return address
  }

  async function reload (next: NavigatorConfig): Promise<void> {
    if (closing) {
      log.warn('shutting down: the configuration is not reloaded')
      return
    }
    const listen = currentConfig.server.listen
    if (next.server.listen.host !== listen.host || (next.server.listen.port !== listen.port && next.server.listen.port !== 0)) {
      log.warn('server.listen changed: a restart is needed to listen on the new address')
    }
    const app = Fastify(fastifyOptions({ loggerInstance: log }, identity))
    let generation: Generation
    try {
      generation = await prepare(app, next)
    } catch (err) {
      // A half-built generation never answers: it is closed and the previous one stays current.
      await app.close().catch(() => {})
      throw err
    }
    // The supervisor learns the new processes before the new routes can reach them. update() registers
    // synchronously (it throws at once, having applied nothing, or returns); the drain of replaced
    // processes and the restarts go on in the background, bounded by shutdown_timeout.
    let applied: Promise<void>
    try {
      applied = supervisor.update(next.applications, { drainMs: next.server.shutdownTimeoutMs })
    } catch (err) {
      await app.close().catch(() => {})
      throw err
    }
    const previous = current
    current = generation
    currentConfig = next
    previous.retired = true
    if (previous.inFlight === 0) retire(previous)
    log.info('configuration reloaded')
    applied.catch((err: Error) => { log.error({ err }, 'the reloaded configuration is in effect, but replacing a process failed') })
  }

  async function waitForDrain (timeoutMs: number): Promise<void> {
    if (inFlight === 0) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        log.warn({ inFlight }, 'shutdown timeout reached with requests still in flight')
        resolve()
      }, timeoutMs)
      drained = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    drained = null
  }

  async function close (): Promise<void> {
    if (closing) return
    closing = true
    log.info({ inFlight, webSockets: webSockets.size }, 'shutting down')
    const stopped = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    server.closeIdleConnections()
    await waitForDrain(currentConfig.server.shutdownTimeoutMs)
    await webSockets.closeAll()
    server.closeAllConnections()
    await stopped
    machineIdle?.stop()
    // Kept-alive upstream connections are closed before the children are asked to stop: an app server that waits
    // for its connections to close on SIGTERM (as Node's server.close() does) would otherwise wait out the stop
    // grace and be killed. Every client connection is closed by now, so no request should be left in flight; if
    // one is (an upstream that ignores the abort), the children are stopped after UPSTREAM_CLOSE_WAIT_MS anyway,
    // which ends its connection.
    const upstreamsClosed = proxy.close()
    await settlesWithin(upstreamsClosed, UPSTREAM_CLOSE_WAIT_MS)
    await supervisor.stop()
    await upstreamsClosed.catch((err: Error) => { log.warn({ err: err.message }, 'closing the upstream connections failed') })
    await current.app.close()
    log.info('stopped')
  }

  return {
    get fastify () { return current.app },
    get config () { return currentConfig },
    supervisor,
    server,
    log,
    listen,
    reload,
    close
  }
}
