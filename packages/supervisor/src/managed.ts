import type { ManagedProcessConfig } from '@navigator/config'
import { RestartDelays, type RestartBackoff } from './backoff.js'
import type { SupervisorContext } from './context.js'
import { outputHandler } from './context.js'
import { ProcessGroup, spawnFailure, type GroupExit } from './process-group.js'
import { Pending } from './pending.js'

/** waiting: its start_delay runs; exited: it ended and is not restarted (status 0, or auto_restart off). */
export type ManagedState = 'waiting' | 'running' | 'backoff' | 'exited' | 'stopped'

export interface ManagedStatus {
  state: ManagedState
  pid: number | null
  restarts: number
}

/** Everything that changes how a managed process is launched; equal signatures let a reload keep it running. */
export function managedSignature (config: ManagedProcessConfig): string {
  return JSON.stringify([config.command, config.args, config.workingDir, config.env])
}

/**
 * A `managed_processes` entry (a job worker, Redis): a long-running process that serves no HTTP. Started after its
 * start_delay, restarted with the standalone servers' backoff when auto_restart is on and it fails, stopped as a
 * whole process group. Unlike a standalone server it has no port and no readiness: running means spawned.
 */
export class ManagedProcess {
  state: ManagedState = 'stopped'
  restarts = 0
  private group: ProcessGroup | null = null
  private readonly delays: RestartDelays
  private upSince = 0
  private timer: NodeJS.Timeout | null = null
  private stopRequested = false
  private readonly spawning = new Pending()

  constructor (private readonly context: SupervisorContext, public config: ManagedProcessConfig, backoff: RestartBackoff) {
    this.delays = new RestartDelays(backoff)
  }

  get name (): string {
    return this.config.name
  }

  status (): ManagedStatus {
    return { state: this.state, pid: this.group?.pid ?? null, restarts: this.restarts }
  }

  /** Spawns it after its start_delay; resolves once spawned when there is no delay, else once the delay is set. */
  async start (): Promise<void> {
    this.stopRequested = false
    if (this.state !== 'stopped' && this.state !== 'exited') return
    const delayMs = this.config.startDelayMs
    if (delayMs === 0) {
      await this.spawnTracked()
      return
    }
    this.state = 'waiting'
    this.context.logger.info({ process: this.name, delayMs }, 'managed process waiting for its start_delay')
    this.later(delayMs, () => { void this.spawnTracked() })
  }

  /** SIGTERM to its process group, SIGKILL after the grace; a pending start or restart is cancelled. */
  async stop (): Promise<void> {
    this.stopRequested = true
    if (this.timer !== null) {
      clearTimeout(this.timer)
      this.timer = null
    }
    if (this.spawning.current !== null) await this.spawning.current
    const group = this.group
    this.state = 'stopped'
    if (group === null) return
    const exit = await group.terminate(this.context.stopGraceMs)
    if (this.group === group) this.group = null
    this.context.logger.info({ process: this.name, pid: group.pid }, 'managed process stopped')
    this.emitExit(exit, true)
  }

  private later (delayMs: number, then: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = null
      then()
    }, delayMs)
  }

  private spawnTracked (): Promise<void> {
    return this.spawning.track(this.spawn())
  }

  private async spawn (): Promise<void> {
    const { env, logger } = this.context
    const config = this.config
    let group: ProcessGroup
    try {
      group = await ProcessGroup.spawn({
        command: config.command,
        args: config.args,
        cwd: config.workingDir,
        env: { ...env, ...config.env },
        onLine: outputHandler(this.context, config.name)
      })
    } catch (err) {
      const { reason } = spawnFailure(err, config.command, config.workingDir)
      logger.error({ process: config.name, reason }, 'managed process cannot start')
      this.afterEnd(false, 0)
      return
    }
    if (this.stopRequested) {
      await group.terminate(this.context.stopGraceMs)
      return
    }
    this.group = group
    this.state = 'running'
    this.upSince = Date.now()
    void group.exited.then((exit) => { this.onExit(group, exit) })
    this.context.events.emit('managed-spawn', { name: config.name, pid: group.pid })
    logger.info({ process: config.name, pid: group.pid }, 'managed process started')
  }

  /** An exit we did not ask for; a requested one is reported by stop() once the whole group is gone. */
  private onExit (group: ProcessGroup, exit: GroupExit): void {
    if (group.terminating || this.group !== group) return
    const failed = exit.code !== 0
    const fields = { process: this.name, pid: group.pid, code: exit.code, signal: exit.signal }
    if (failed) this.context.logger.warn(fields, 'managed process exited unexpectedly')
    else this.context.logger.info(fields, 'managed process exited')
    group.killRemaining()
    this.group = null
    this.emitExit(exit, false)
    this.afterEnd(failed, Date.now() - this.upSince)
  }

  /** After an exit or a failed spawn: restarted with backoff when it failed and auto_restart is on, else left exited. */
  private afterEnd (failed: boolean, healthyForMs: number): void {
    if (this.stopRequested) {
      this.state = 'stopped'
      return
    }
    if (!failed || !this.config.autoRestart) {
      this.state = 'exited'
      return
    }
    const delayMs = this.delays.next(healthyForMs)
    this.state = 'backoff'
    this.context.events.emit('managed-restart', { name: this.name, delayMs })
    this.context.logger.info({ process: this.name, delayMs }, 'managed process restarting after backoff')
    this.later(delayMs, () => {
      this.restarts++
      void this.spawnTracked()
    })
  }

  private emitExit (exit: GroupExit, expected: boolean): void {
    this.context.events.emit('managed-exit', { name: this.name, code: exit.code, signal: exit.signal, expected })
  }
}
