// applications.max_size: at most that many tenants run at once; starting one more first stops the least recently
// used idle one, or waits for one to become idle.

import type { SupervisorLogger } from './logger.js'
import { StartupTimeoutError, StoppedError } from './errors.js'

/** What the pool needs of a tenant. */
export interface PoolMember {
  readonly name: string
  /** Higher = used more recently (see TenantPool.tick). */
  readonly lastUsed: number
  /** Ready, with no request in flight and no tracked WebSocket: it may be stopped to make room. */
  evictable (): boolean
  /** The normal stop (tenant.stop hooks, then the whole process group). */
  stop (): Promise<void>
}

/**
 * The tenants that hold a place (from the moment they are allowed to spawn until their process group is gone), and
 * the starts waiting for one. A place is handed from the stopped tenant to the starting one before the stop begins,
 * so two starts never stop one tenant for each other, and the new process is spawned only once the old one is gone.
 */
export class TenantPool {
  private readonly running = new Set<PoolMember>()
  private readonly waiters = new Set<() => void>()
  private sequence = 0
  private wakeScheduled = false

  constructor (private readonly logger: SupervisorLogger, private readonly maxSize: () => number) {}

  /** The next value of a tenant's lastUsed. */
  tick (): number {
    return ++this.sequence
  }

  /** Names of the tenants that hold a place. */
  members (): string[] {
    return [...this.running].map((member) => member.name)
  }

  /**
   * Resolves once `member` holds a place: at once when there is room, after stopping the least recently used idle
   * tenant when there is none, or once a tenant becomes idle or stops. Rejects with NAV_SUPERVISOR_STARTUP_TIMEOUT
   * at `deadline`, and with NAV_SUPERVISOR_STOPPED as soon as `cancelled()` says so (checked whenever it wakes).
   */
  async acquire (member: PoolMember, deadline: number, timeoutMs: number, cancelled: () => boolean): Promise<void> {
    let waitLogged = false
    while (true) {
      if (cancelled()) throw new StoppedError(member.name)
      const maxSize = this.maxSize()
      if (maxSize <= 0 || this.running.has(member) || this.running.size < maxSize) {
        this.running.add(member)
        return
      }
      const victim = this.leastRecentlyUsedIdle()
      if (victim !== null) {
        this.running.delete(victim)
        this.running.add(member)
        this.logger.info({ process: victim.name, for: member.name, maxSize }, `tenant stopped to make room (max_size ${maxSize})`)
        await victim.stop()
        return
      }
      const remainingMs = deadline - Date.now()
      if (remainingMs <= 0) {
        this.logger.warn({ process: member.name, maxSize, running: this.members(), timeoutMs }, `no running tenant became idle within the startup timeout (max_size ${maxSize})`)
        throw new StartupTimeoutError(member.name, timeoutMs)
      }
      if (!waitLogged) {
        waitLogged = true
        this.logger.info({ process: member.name, maxSize, running: this.members() }, `every running tenant is busy; waiting for one to become idle (max_size ${maxSize})`)
      }
      await this.changed(remainingMs)
    }
  }

  /** `member` no longer holds a place (its process group is gone, or its start failed before the spawn). */
  release (member: PoolMember): void {
    if (this.running.delete(member)) this.notify()
  }

  /**
   * Something a waiting start may care about happened: a tenant became idle, stopped, or was stopped. Waiters wake in
   * a later turn of the event loop, so that the requests a just-ready tenant was started for are counted first.
   */
  notify (): void {
    if (this.waiters.size === 0 || this.wakeScheduled) return
    this.wakeScheduled = true
    setImmediate(() => {
      this.wakeScheduled = false
      for (const wake of [...this.waiters]) wake()
    })
  }

  private leastRecentlyUsedIdle (): PoolMember | null {
    let found: PoolMember | null = null
    for (const member of this.running) {
      if (member.evictable() && (found === null || member.lastUsed < found.lastUsed)) found = member
    }
    return found
  }

  private changed (timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer)
        this.waiters.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, timeoutMs)
      this.waiters.add(wake)
    })
  }
}
