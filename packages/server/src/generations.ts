import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { NavigatorConfig } from '@navigator/config'
import { acceptUpgrade, closeRefusedUpgrade } from '@navigator/proxy'
import type { MachineIdle } from '@navigator/supervisor'
import type { NavigatorMetrics } from './metrics.js'
import type { Pipeline } from './pipeline.js'

/** One configuration's Fastify instance and pipeline; the previous one is closed once its last request is done. */
export interface Generation {
  readonly app: FastifyInstance
  readonly pipeline: Pipeline
  readonly config: NavigatorConfig
  inFlight: number
  retired: boolean
}

/** The generation that answers a response, set on the ServerResponse itself. */
const kGeneration = Symbol('navigator.generation')
/** Set on a response whose request counts for the Machine's idleness (every request but a health check). */
const kIdleCounted = Symbol('navigator.idleCounted')
/** When the request arrived (performance.now()), set only while per-request lines are logged. */
const kStarted = Symbol('navigator.started')

type Response = ServerResponse & { [kGeneration]?: Generation, [kIdleCounted]?: true, [kStarted]?: number }

const NOT_ACCEPTING = 'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'
/** RFC 6455: the opening handshake is a GET. Another method with Upgrade: would reach the app as a GET otherwise. */
const NOT_A_GET = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 35\r\n\r\nan upgrade request must be a GET.\r\n'

/** Whether `url` (path and query) is the health check path `healthCheck` (null: none). */
export function isHealthCheckUrl (url: string | undefined, healthCheck: string | null): boolean {
  if (healthCheck === null || url === undefined || !url.startsWith(healthCheck)) return false
  return url.length === healthCheck.length || url.charCodeAt(healthCheck.length) === 63 /* ? */
}

/**
 * The generations of the configuration, and every request's way into the current one: counted in flight (for
 * the drain at shutdown and the retirement of a replaced generation) until its response closes, counted for the
 * Machine's idleness, and run by the generation's pipeline.
 */
export class Generations {
  current: Generation
  /** Requests and pending upgrades of every generation. */
  inFlight = 0
  /** Set at shutdown: answered connections are closed, new upgrades refused. */
  closing = false
  /**
   * Sockets of upgrade requests that are not (yet) relayed WebSockets: waiting for their answer, or answered with
   * plain HTTP and lingering. The http server does not count them as its connections, so shutdown ends them itself.
   */
  private readonly upgradeSockets = new Set<Duplex>()
  private drained: (() => void) | null = null
  private readonly onResponseClosed: (this: Response) => void

  constructor (
    first: Generation,
    private readonly log: FastifyBaseLogger,
    private readonly machineIdle: MachineIdle | null,
    private readonly logRequests: boolean,
    metrics: NavigatorMetrics | null = null
  ) {
    this.current = first
    const generations = this
    // One listener for every response (no closure per request): the generation rides on the response.
    this.onResponseClosed = function (this: Response): void {
      if (this[kIdleCounted] === true) machineIdle?.requestFinished()
      const started = this[kStarted]
      if (started !== undefined) generations.logCompleted(this, started)
      metrics?.requestClosed(this)
      generations.finished(this[kGeneration] as Generation)
    }
  }

  readonly request = (req: IncomingMessage, res: Response): void => {
    const generation = this.started()
    // Health checks are no traffic: Fly polls them every 15 s, and counted they would keep the Machine awake.
    if (this.machineIdle !== null && !isHealthCheckUrl(req.url, generation.config.server.healthCheck)) {
      this.machineIdle.requestStarted()
      res[kIdleCounted] = true
    }
    if (this.logRequests) res[kStarted] = performance.now()
    // While draining, answered connections are closed rather than kept alive.
    if (this.closing) res.shouldKeepAlive = false
    res[kGeneration] = generation
    res.on('close', this.onResponseClosed)
    generation.pipeline.run(req, res, generation.app)
  }

  /**
   * A pending upgrade counts as in flight for its generation (a reload does not retire the generation under it,
   * and the drain waits for it) until its handshake settles: the client gets its 101 (the relay then counts as a
   * WebSocket), or the socket is ended or closed (a refusal, an error, a client gone).
   */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.closing || req.method !== 'GET') {
      closeRefusedUpgrade(socket, this.closing ? NOT_ACCEPTING : NOT_A_GET)
      return
    }
    const generation = this.started()
    const sockets = this.upgradeSockets
    sockets.add(socket)
    socket.once('close', () => { sockets.delete(socket) })
    let pending = true
    const settle = (): void => {
      if (!pending) return
      pending = false
      socket.removeListener('finish', settle)
      socket.removeListener('close', settle)
      this.finished(generation)
    }
    // A 101: the relay owns the socket from now on (and closes it at shutdown with a close frame).
    const upgraded = (): void => {
      sockets.delete(socket)
      settle()
    }
    socket.once('finish', settle)
    socket.once('close', settle)
    generation.pipeline.run(req, acceptUpgrade(req, socket, head, this.log, upgraded), generation.app)
  }

  /** At shutdown, once the drain is over: every upgrade socket that is not a relayed WebSocket is destroyed. */
  destroyUpgradeSockets (): void {
    for (const socket of this.upgradeSockets) socket.destroy()
    this.upgradeSockets.clear()
  }

  /** Makes `next` current; the previous generation is closed as soon as its last request is done. */
  replace (next: Generation): void {
    const previous = this.current
    this.current = next
    previous.retired = true
    if (previous.inFlight === 0) this.retire(previous)
  }

  /** Resolves when no request is in flight, or after `timeoutMs` (with a warning). */
  async drain (timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn({ inFlight: this.inFlight }, 'shutdown timeout reached with requests still in flight')
        resolve()
      }, timeoutMs)
      this.drained = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    this.drained = null
  }

  private started (): Generation {
    const generation = this.current
    generation.inFlight++
    this.inFlight++
    return generation
  }

  private finished (generation: Generation): void {
    generation.inFlight--
    this.inFlight--
    if (generation.retired && generation.inFlight === 0) this.retire(generation)
    if (this.inFlight === 0 && this.drained !== null) this.drained()
  }

  private retire (generation: Generation): void {
    generation.app.close().catch((err: Error) => { this.log.error({ err }, 'closing the previous configuration failed') })
  }

  private logCompleted (res: Response, started: number): void {
    const req = res.req
    this.log.debug({ method: req.method, url: req.url, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request completed')
  }
}
