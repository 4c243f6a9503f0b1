import { setTimeout as delay } from 'node:timers/promises'
import type { TenantConfig } from '@navigator/config'
import type { SupervisorContext } from './context.js'
import { outputHandler } from './context.js'
import { CannotStartError, SpawnFailedError, StartupTimeoutError, StoppedError } from './errors.js'
import { ProcessGroup, spawnFailure, type GroupExit } from './process-group.js'
import { pollUntilReady, probeHttp } from './readiness.js'
import { tenantLaunch } from './tenant-launch.js'
import type { PoolMember } from './pool.js'
import { runAs } from './users.js'
import { waitForDrain } from './drain.js'
import { runHooks } from './hooks.js'
import type { HookConfig } from '@navigator/config'

export type TenantState = 'stopped' | 'starting' | 'ready' | 'stopping'

export interface TenantStatus {
  state: TenantState
  port: number | null
  pid: number | null
}

type StartOutcome = 'ready' | 'exited' | 'timeout'

/**
 * One tenant's lifecycle: stopped -> starting -> ready -> stopping -> stopped. Concurrent callers of
 * ensure() share one start; an unexpected exit returns the tenant to stopped, and the next ensure()
 * starts it again. Tenants never wait on each other, except for room under applications.max_size (pool.ts).
 */
export class Tenant implements PoolMember {
  state: TenantState = 'stopped'
  port: number | null = null
  /** When it was last used (a request or WebSocket began or ended, or it became ready), on the pool's clock. */
  lastUsed = 0
  /** The cgroup of the running process group (memory_limit), removed once the group is gone. */
  private cgroup: string | null = null
  private group: ProcessGroup | null = null
  private starting: Promise<{ port: number }> | null = null
  private stopping: Promise<void> | null = null
  /** Bumped by stop(): a start that sees another value was cancelled. */
  private generation = 0
  private inFlight = 0
  private webSockets = 0
  private idleTimer: NodeJS.Timeout | null = null
  /** Set while retire() waits for the last request and WebSocket; called when both counts reach 0. */
  private drained: (() => void) | null = null
  /** The tenant.stop hooks of the running process group, once begun: a second stop() waits for the same run. */
  private stopHooks: { group: ProcessGroup, done: Promise<unknown> } | null = null

  constructor (private readonly context: SupervisorContext, public config: TenantConfig) {}

  get name (): string {
    return this.config.name
  }

  status (): TenantStatus {
    return { state: this.state, port: this.port, pid: this.group?.pid ?? null }
  }

  get requestsInFlight (): number {
    return this.inFlight
  }

  get openWebSockets (): number {
    return this.webSockets
  }

  /** The tenant's startup_timeout, else the applications'. */
  get startupTimeoutMs (): number {
    return this.config.startupTimeoutMs ?? this.context.applications.startupTimeoutMs
  }

  /** A request in flight, or an open WebSocket when WebSockets are tracked (track_websockets), keeps it running. */
  private get busy (): boolean {
    return this.inFlight > 0 || (this.webSockets > 0 && (this.config.trackWebSockets ?? this.context.applications.trackWebSockets ?? true))
  }

  /** Whether applications.max_size may stop it to make room: ready (its tenant.start hooks done), not stopping, not busy. */
  evictable (): boolean {
    return this.state === 'ready' && this.stopHooks?.group !== this.group && !this.busy
  }

  private touch (): void {
    this.lastUsed = this.context.pool.tick()
  }

  ensure (): Promise<{ port: number }> {
    if (this.state === 'ready' && this.port !== null) return Promise.resolve({ port: this.port })
    if (this.starting !== null) return this.starting
    if (this.stopping !== null) return this.stopping.then(() => this.ensure())
    const starting = this.start()
    this.starting = starting
    const clear = (): void => {
      if (this.starting === starting) this.starting = null
    }
    starting.then(clear, clear)
    return starting
  }

  trackRequest (): () => void {
    this.inFlight++
    this.touch()
    this.clearIdleTimer()
    let done = false
    return () => {
      if (done) return
      done = true
      this.inFlight--
      this.afterActivity()
    }
  }

  trackWebSocket (): () => void {
    this.webSockets++
    this.touch()
    // An untracked WebSocket does not hold off the idle stop (nor make the tenant busy for max_size).
    if (this.busy) this.clearIdleTimer()
    let closed = false
    return () => {
      if (closed) return
      closed = true
      this.webSockets--
      this.afterActivity()
    }
  }

  private afterActivity (): void {
    this.touch()
    this.armIdleTimer()
    this.checkDrained()
    if (!this.busy) this.context.pool.notify()
  }

  /**
   * Stops this instance once its tracked requests and WebSockets reach 0, or after `drainMs`
   * (whatever is still open then is cut by the stop). Used when a reload replaced the tenant.
   */
  async retire (drainMs: number): Promise<void> {
    if (this.inFlight > 0 || this.webSockets > 0) {
      await waitForDrain(drainMs, (drained) => { this.drained = drained }, () => {
        this.context.logger.warn({ process: this.name, drainMs, requests: this.inFlight, webSockets: this.webSockets }, 'replaced tenant still busy after the drain limit; stopping it')
      })
    }
    await this.stop()
  }

  private checkDrained (): void {
    if (this.drained !== null && this.inFlight === 0 && this.webSockets === 0) this.drained()
  }

  /** Re-reads timeouts after a configuration reload. */
  refresh (): void {
    this.clearIdleTimer()
    this.armIdleTimer()
  }

  async stop (): Promise<void> {
    this.drained?.()
    this.generation++
    // A start waiting for room under max_size sees the new generation and gives up.
    this.context.pool.notify()
    this.clearIdleTimer()
    const starting = this.starting
    if (this.group !== null) await this.stopGroup(this.group)
    if (starting !== null) await starting.catch(() => {})
    if (this.stopping !== null) await this.stopping
  }

  private async start (): Promise<{ port: number }> {
    const generation = this.generation
    const { ports, env, events, logger, pool } = this.context
    const timeoutMs = this.startupTimeoutMs
    this.state = 'starting'
    const notStarted = (err: unknown): never => {
      pool.release(this)
      this.state = 'stopped'
      throw err
    }

    try {
      // max_size: the wait for room has a startup timeout of its own; the spawn gets a full one after it.
      await pool.acquire(this, Date.now() + timeoutMs, timeoutMs, () => generation !== this.generation)
    } catch (err) {
      return notStarted(err)
    }
    const { applications } = this.context
    const deadline = Date.now() + timeoutMs
    let port: number
    try {
      port = await ports.allocate(applications.startPort, this.name)
    } catch (err) {
      return notStarted(err)
    }
    if (generation !== this.generation) {
      ports.release(port)
      return notStarted(new StoppedError(this.name))
    }

    let group: ProcessGroup
    let command = ''
    const ids = runAs(applications, this.config)
    if (ids?.problem !== undefined) {
      ports.release(port)
      logger.error({ process: this.name, reason: ids.problem }, 'tenant cannot start')
      return notStarted(new CannotStartError(this.name, ids.problem))
    }
    try {
      const launch = tenantLaunch(applications, this.config, port, env)
      command = launch.command
      group = await ProcessGroup.spawn({ ...launch, ...ids, onLine: outputHandler(this.context, this.name) })
    } catch (err) {
      ports.release(port)
      pool.release(this)
      this.state = 'stopped'
      const { reason, permanent } = spawnFailure(err, command, this.config.workingDir)
      // One line, without a stack trace: the reason is all an operator needs.
      logger.error({ process: this.name, reason }, permanent ? 'tenant cannot start' : 'tenant could not be spawned')
      throw permanent ? new CannotStartError(this.name, reason) : new SpawnFailedError(this.name, reason)
    }
    this.group = group
    this.port = port
    const memoryLimit = this.config.memoryLimit ?? applications.memoryLimit ?? null
    if (memoryLimit !== null) this.cgroup = this.context.memoryLimits.apply(this.name, group.pid, memoryLimit)
    void group.exited.then((exit) => this.onExit(group, exit))
    events.emit('spawn', { name: this.name, kind: 'tenant', pid: group.pid, port })
    logger.info({ process: this.name, pid: group.pid, port }, 'tenant starting')

    if (generation !== this.generation) {
      await this.stopGroup(group)
      throw new StoppedError(this.name)
    }

    const outcome = await this.waitForReadiness(group, port, deadline)
    if (generation !== this.generation) throw new StoppedError(this.name)
    if (outcome === 'exited') {
      const exit = group.exitInfo
      throw new SpawnFailedError(this.name, `exited during start-up (code ${exit?.code ?? 'null'}, signal ${exit?.signal ?? 'null'})`)
    }
    if (outcome === 'timeout') {
      logger.error({ process: this.name, timeoutMs }, 'tenant not ready within the startup timeout; stopping it')
      await this.stopGroup(group)
      throw new StartupTimeoutError(this.name, timeoutMs)
    }
    // Before the state says ready: the first request waits for tenant.start, as every caller of ensure() does.
    await this.runTenantHooks('start', this.config.hooks?.start ?? [], port)
    if (generation !== this.generation) throw new StoppedError(this.name)
    this.state = 'ready'
    this.touch()
    events.emit('ready', { name: this.name, port })
    logger.info({ process: this.name, port }, 'tenant ready')
    this.armIdleTimer()
    pool.notify()
    return { port }
  }

  private async runStopHooks (group: ProcessGroup): Promise<void> {
    if (this.stopHooks?.group !== group) {
      this.stopHooks = { group, done: this.runTenantHooks('stop', this.config.hooks?.stop ?? [], this.port ?? 0) }
    }
    await this.stopHooks.done
  }

  /** Runs hooks with the tenant's environment and working directory; a failure is logged, never thrown. */
  private async runTenantHooks (moment: 'start' | 'stop', hooks: readonly HookConfig[], port: number): Promise<void> {
    if (hooks.length === 0) return
    const { applications, env, logger } = this.context
    let launch
    try {
      launch = tenantLaunch(applications, this.config, port, env)
    } catch (err) {
      logger.error({ process: this.name, hook: `tenant.${moment}`, reason: (err as Error).message }, 'hook could not start')
      return
    }
    const tenantEnv = launch.env
    const vars = this.config.var
    await runHooks(hooks, {
      name: `tenant.${moment}`,
      env: tenantEnv,
      cwd: launch.cwd,
      logger: logger.child({ process: this.name }),
      lookup: (name) => Object.hasOwn(vars, name) ? vars[name] : tenantEnv[name],
      reload: this.context.reload
    })
  }

  private async waitForReadiness (group: ProcessGroup, port: number, deadline: number): Promise<StartOutcome> {
    const { host, applications } = this.context
    const path = this.config.healthCheck ?? applications.healthCheck
    // start_delay: the app is given this long before it is first asked (within the same startup timeout).
    const startDelayMs = applications.startDelayMs ?? 0
    const abort = new AbortController()
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race<StartOutcome>([
        delay(startDelayMs, undefined, { signal: abort.signal })
          .then(async () => { await pollUntilReady(() => probeHttp(host, port, path), abort.signal) })
          .then(() => 'ready'),
        group.exited.then(() => 'exited'),
        new Promise((resolve) => { timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), 'timeout') })
      ])
    } finally {
      clearTimeout(timer)
      abort.abort()
    }
  }

  /**
   * Stops the process group, after the tenant.stop hooks when it was ready. The state is `stopping` from the first
   * moment, hooks included: no request is routed to it while its hooks run (ensure() waits for the stop, then starts
   * it again), so the requests the termination cuts are only those that were already in flight.
   */
  private stopGroup (group: ProcessGroup): Promise<void> {
    if (this.stopping !== null) return this.stopping
    const hooks = this.state === 'ready' ? this.runStopHooks(group) : Promise.resolve()
    this.state = 'stopping'
    this.clearIdleTimer()
    const stopping = hooks.then(async () => await group.terminate(this.context.stopGraceMs)).then((exit) => {
      this.stopping = null
      if (this.group === group) this.markStopped()
      this.emitExit(exit, true)
    })
    this.stopping = stopping
    return stopping
  }

  /** An exit we did not ask for; a requested one is reported by stopGroup once the whole group is gone. */
  private onExit (group: ProcessGroup, exit: GroupExit): void {
    if (group.terminating || this.group !== group) return
    this.context.logger.warn({ process: this.name, code: exit.code, signal: exit.signal }, 'tenant exited unexpectedly; it restarts on its next request')
    group.killRemaining()
    this.markStopped()
    this.emitExit(exit, false)
  }

  private emitExit (exit: GroupExit, expected: boolean): void {
    this.context.events.emit('exit', { name: this.name, code: exit.code, signal: exit.signal, expected })
  }

  private markStopped (): void {
    this.clearIdleTimer()
    if (this.port !== null) this.context.ports.release(this.port)
    if (this.cgroup !== null) this.context.memoryLimits.remove(this.cgroup)
    this.cgroup = null
    this.group = null
    this.port = null
    this.state = 'stopped'
    this.context.pool.release(this)
  }

  private armIdleTimer (): void {
    const idleMs = this.context.applications.idleTimeoutMs
    if (idleMs <= 0 || this.state !== 'ready' || this.busy || this.idleTimer !== null) return
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null
      if (this.state !== 'ready' || this.busy) return
      this.context.logger.info({ process: this.name, idleMs }, 'tenant idle; stopping it')
      this.context.events.emit('idle-stop', { name: this.name })
      void this.stop()
    }, idleMs)
    this.idleTimer.unref()
  }

  private clearIdleTimer (): void {
    if (this.idleTimer === null) return
    clearTimeout(this.idleTimer)
    this.idleTimer = null
  }
}
