import type { StandaloneServerConfig } from '@navigator/config'
import type { SupervisorContext } from './context.js'
import { outputHandler } from './context.js'
import { ProcessGroup, spawnFailure, type GroupExit } from './process-group.js'
import { pollUntilReady, probeTcp } from './readiness.js'
import { waitForDrain } from './drain.js'
import { listenerOwner } from './listener-owner.js'
import { isPortFree } from './ports.js'
import { RestartDelays, type RestartBackoff } from './backoff.js'
import { Pending } from './pending.js'

export { RESTART_BACKOFF_INITIAL_MS, RESTART_BACKOFF_MAX_MS, RESTART_BACKOFF_RESET_MS, type RestartBackoff } from './backoff.js'

export type StandaloneState = 'starting' | 'running' | 'backoff' | 'stopped'

export interface StandaloneStatus {
  state: StandaloneState
  port: number
  pid: number | null
  restarts: number
  /** Why the last spawn failed when it cannot succeed as configured (a missing command or folder); else null. */
  cannotStart: string | null
}

/** The environment of a standalone server: Navigator's, then PORT (its fixed port), then its own `env`. */
export function standaloneEnv (config: StandaloneServerConfig, environment: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...environment, PORT: String(config.port), ...config.env }
}

/** Everything that changes how a standalone server is launched; equal signatures let a reload keep it running. */
export function standaloneSignature (config: StandaloneServerConfig): string {
  return JSON.stringify([config.command, config.args, config.workingDir, config.port, config.env])
}

/**
 * A standalone server (an Action Cable server, say): started at boot on its fixed port, ready once
 * its own process listens there, restarted with exponential backoff whenever it exits.
 *
 * The port is checked before each spawn: a port another process holds is logged and the server stays in
 * backoff, so no request is ever relayed to a stranger. On Linux readiness also checks that the listener is
 * the child's (its process group's), which closes the moment between a spawn and the child's EADDRINUSE.
 */
export class StandaloneServer {
  state: StandaloneState = 'stopped'
  restarts = 0
  private group: ProcessGroup | null = null
  private readonly delays: RestartDelays
  private upSince: number | null = null
  private restartTimer: NodeJS.Timeout | null = null
  private readiness: AbortController | null = null
  private inFlight = 0
  private webSockets = 0
  private stopRequested = false
  private readonly spawning = new Pending()
  /** Set while drainRequests() waits; called when the in-flight count reaches 0 (or on stop()). */
  private drained: (() => void) | null = null
  /** Requests waiting for a starting server: told true once it runs, false when it fails or stops. */
  private readonly waiters = new Set<(running: boolean) => void>()
  private strangerReportedFor: ProcessGroup | null = null
  private cannotStart: string | null = null

  constructor (
    private readonly context: SupervisorContext,
    public config: StandaloneServerConfig,
    backoff: RestartBackoff
  ) {
    this.delays = new RestartDelays(backoff)
  }

  get name (): string {
    return this.config.name
  }

  get requestsInFlight (): number {
    return this.inFlight
  }

  get openWebSockets (): number {
    return this.webSockets
  }

  status (): StandaloneStatus {
    return { state: this.state, port: this.config.port, pid: this.group?.pid ?? null, restarts: this.restarts, cannotStart: this.cannotStart }
  }

  /** Spawns the server; resolves once it is spawned (or its spawn failed and a restart is scheduled), not when it is ready. */
  async start (): Promise<void> {
    this.stopRequested = false
    if (this.state !== 'stopped') return
    await this.spawnTracked()
  }

  /**
   * Resolves true once the server runs (at once when it does), false when it is in backoff or stopped, when its
   * start fails, or after `timeoutMs`.
   */
  whenRunning (timeoutMs: number): Promise<boolean> {
    if (this.state === 'running') return Promise.resolve(true)
    if (this.state !== 'starting') return Promise.resolve(false)
    return new Promise((resolve) => {
      const done = (running: boolean): void => {
        clearTimeout(timer)
        this.waiters.delete(done)
        resolve(running)
      }
      const timer = setTimeout(done, timeoutMs, false)
      this.waiters.add(done)
    })
  }

  trackRequest (): () => void {
    this.inFlight++
    let done = false
    return () => {
      if (done) return
      done = true
      this.inFlight--
      if (this.inFlight === 0) this.drained?.()
    }
  }

  /**
   * Resolves once no tracked request is in flight, or after `drainMs`. Open WebSockets are not
   * waited for: a restart on the same fixed port closes them.
   */
  async drainRequests (drainMs: number): Promise<void> {
    if (this.inFlight === 0) return
    await waitForDrain(drainMs, (drained) => { this.drained = drained }, () => {
      this.context.logger.warn({ process: this.name, drainMs, requests: this.inFlight }, 'standalone server still busy after the drain limit; restarting it')
    })
  }

  trackWebSocket (): () => void {
    this.webSockets++
    let closed = false
    return () => {
      if (closed) return
      closed = true
      this.webSockets--
    }
  }

  async stop (): Promise<void> {
    this.drained?.()
    this.stopRequested = true
    if (this.restartTimer !== null) {
      clearTimeout(this.restartTimer)
      this.restartTimer = null
    }
    this.readiness?.abort()
    this.settleWaiters(false)
    if (this.spawning.current !== null) await this.spawning.current
    const group = this.group
    if (group === null) {
      this.state = 'stopped'
      return
    }
    const exit = await group.terminate(this.context.stopGraceMs)
    if (this.group === group) this.group = null
    this.state = 'stopped'
    this.emitExit(exit, true)
  }

  private spawnTracked (): Promise<void> {
    return this.spawning.track(this.spawn())
  }

  private async spawn (): Promise<void> {
    const { host, env, events, logger } = this.context
    const config = this.config
    this.state = 'starting'
    this.upSince = Date.now()
    if (!await isPortFree(config.port, host)) {
      logger.warn({ process: config.name, port: config.port }, `port ${config.port} is in use by another process`)
      this.scheduleRestart(false)
      return
    }
    let group: ProcessGroup
    try {
      group = await ProcessGroup.spawn({
        command: config.command,
        args: config.args,
        cwd: config.workingDir,
        env: standaloneEnv(config, env),
        onLine: outputHandler(this.context, config.name)
      })
    } catch (err) {
      const { reason, permanent } = spawnFailure(err, config.command, config.workingDir)
      this.cannotStart = permanent ? reason : null
      // One line, without a stack trace; still retried with backoff, as the files may appear (a volume mounted late).
      logger.error({ process: config.name, reason }, permanent ? 'standalone server cannot start' : 'standalone server could not be spawned')
      this.scheduleRestart(false)
      return
    }
    this.cannotStart = null
    if (this.stopRequested) {
      await group.terminate(this.context.stopGraceMs)
      return
    }
    this.group = group
    void group.exited.then((exit) => this.onExit(group, exit))
    events.emit('spawn', { name: config.name, kind: 'standalone', pid: group.pid, port: config.port })
    logger.info({ process: config.name, pid: group.pid, port: config.port }, 'standalone server starting')

    const readiness = new AbortController()
    this.readiness = readiness
    void group.exited.then(() => readiness.abort())
    pollUntilReady(() => this.probe(group), readiness.signal).then(() => {
      if (this.group !== group || this.stopRequested) return
      this.state = 'running'
      this.upSince = Date.now()
      events.emit('ready', { name: config.name, port: config.port })
      logger.info({ process: config.name, port: config.port }, 'standalone server ready')
      this.settleWaiters(true)
    }, () => {})
  }

  /**
   * Ready when the listener on the port is the group's own (Linux), or, where that cannot be read, when the port
   * accepts connections (checked free just before the spawn). A stranger's listener is reported once per spawn.
   */
  private async probe (group: ProcessGroup): Promise<boolean> {
    const { host, logger } = this.context
    const port = this.config.port
    const owner = listenerOwner(host, port, group.pid)
    if (owner === null) return await probeTcp(host, port)
    if (owner === 'other' && this.strangerReportedFor !== group) {
      this.strangerReportedFor = group
      logger.warn({ process: this.name, port }, `port ${port} is in use by another process`)
    }
    return owner === 'ours'
  }

  private settleWaiters (running: boolean): void {
    for (const waiter of [...this.waiters]) waiter(running)
  }

  /** An exit we did not ask for; a requested one is reported by stop() once the whole group is gone. */
  private onExit (group: ProcessGroup, exit: GroupExit): void {
    if (group.terminating || this.group !== group) return
    this.context.logger.warn({ process: this.name, code: exit.code, signal: exit.signal }, 'standalone server exited unexpectedly')
    group.killRemaining()
    this.group = null
    const wasRunning = this.state === 'running'
    this.state = 'backoff'
    this.settleWaiters(false)
    this.emitExit(exit, false)
    this.scheduleRestart(wasRunning)
  }

  private emitExit (exit: GroupExit, expected: boolean): void {
    this.context.events.emit('exit', { name: this.name, code: exit.code, signal: exit.signal, expected })
  }

  private scheduleRestart (wasRunning: boolean): void {
    if (this.stopRequested) {
      this.state = 'stopped'
      return
    }
    const healthyFor = !wasRunning || this.upSince === null ? 0 : Date.now() - this.upSince
    const delayMs = this.delays.next(healthyFor)
    this.state = 'backoff'
    this.settleWaiters(false)
    this.context.events.emit('restart', { name: this.name, delayMs })
    this.context.logger.info({ process: this.name, delayMs }, 'standalone server restarting after backoff')
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null
      this.restarts++
      void this.spawnTracked()
    }, delayMs)
  }
}
