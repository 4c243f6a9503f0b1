import type { NavigatorConfig, StatusConfig } from '@navigator/config'
import type { WebSocketRelay } from '@navigator/proxy'
import type { StickyObserver } from '@navigator/sticky-sessions'
import type { ExitEvent, Supervisor } from '@navigator/supervisor'
import type { NavigatorMetrics } from './metrics.js'
import { stickyCounter, type StickyCounter, type StickyCounts } from './sticky-counts.js'
import type { Identity } from './steps/index.js'

// What the status page (server.status) shows, gathered when it is asked for: this Machine, its processes, the
// sticky-session counters and the recent fallbacks. Nothing here runs per request except the sticky observer,
// which counts once (into the metrics' cells when they are on) and notes a fallback.

/** How many sticky fallbacks the page lists, newest first. */
export const RECENT_FALLBACKS = 20

export interface MachineStatus {
  /** FLY_MACHINE_ID, FLY_REGION, FLY_APP_NAME; null off Fly. */
  id: string | null
  region: string | null
  app: string | null
  version: string
  pid: number
  startedAt: string
  uptimeSeconds: number
  /** The address Navigator listens on, once it does. */
  listen: string | null
  /** Requests and WebSocket handshakes in flight on this Machine (the status request included). */
  requestsInFlight: number
  /** WebSockets relayed to the apps. */
  webSockets: number
  /** The TurboCable hub's own WebSockets, and the streams they subscribe to (0 when `cable` is off). */
  cable: { webSockets: number, streams: number }
}

export interface ProcessStatus {
  kind: 'tenant' | 'standalone' | 'managed'
  name: string
  /** A tenant's path prefix, a standalone server's match_path; empty for a managed process (it serves no HTTP). */
  route: string
  state: string
  port: number | null
  pid: number | null
  /** Since its process was spawned; null when it has none. */
  uptimeSeconds: number | null
  /**
   * A standalone server's or managed process's restarts; a tenant's starts after its first (after an idle stop, an
   * exit or a reload).
   */
  restarts: number
  requestsInFlight: number
  webSockets: number
}

export interface FallbackEvent {
  at: string
  /** The Machine the cookie (or sticky header) named. */
  machine: string
  /** `fallback`: the maintenance page, cookie kept; `re-pinned`: served here, cookie moved here. */
  decision: 'fallback' | 're-pinned'
}

export interface StatusSnapshot {
  at: string
  machine: MachineStatus
  processes: ProcessStatus[]
  sticky: StickyCounts & {
    /** The sticky-sessions step runs in the configuration in force (enabled, and a Machine ID). */
    enabled: boolean
    /** The last RECENT_FALLBACKS fallbacks, newest first. */
    fallbacks: FallbackEvent[]
  }
}

/** What the page reads when asked for; set once the server is assembled. */
export interface StatusSources {
  supervisor: Supervisor
  webSockets: WebSocketRelay
  cable: { size: number, streams: number }
  /** The configuration in force. */
  config: () => NavigatorConfig
  /** Requests and pending WebSocket handshakes in flight. */
  inFlight: () => number
}

export interface StatusOptions {
  identity: Identity
  version: string
  /** The metrics, when on: their sticky counts are the page's too. */
  metrics: NavigatorMetrics | null
}

export class NavigatorStatus {
  readonly settings: StatusConfig
  private readonly identity: Identity
  private readonly version: string
  private readonly startedAt = Date.now()
  /** Counts the sticky decisions, or null when the metrics do (one count per request either way). */
  private readonly ownCounter: StickyCounter | null
  private readonly metrics: NavigatorMetrics | null
  private readonly fallbacks: FallbackEvent[] = []
  /** Per process name, when each of its processes was spawned, by pid (a reload may run two side by side). */
  private readonly spawnedAt = new Map<string, Map<number, number>>()
  private readonly spawns = new Map<string, number>()
  private address: string | null = null
  private sources: StatusSources | null = null

  constructor (settings: StatusConfig, options: StatusOptions) {
    this.settings = settings
    this.identity = options.identity
    this.version = options.version
    this.metrics = options.metrics
    this.ownCounter = options.metrics === null ? stickyCounter() : null
  }

  /** Reads the processes and watches their spawns and exits (for uptimes and restarts); before the supervisor starts. */
  watch (sources: StatusSources): void {
    this.sources = sources
    const supervisor = sources.supervisor
    const spawned = (event: { name: string, pid: number }): void => {
      let byPid = this.spawnedAt.get(event.name)
      if (byPid === undefined) this.spawnedAt.set(event.name, byPid = new Map())
      byPid.set(event.pid, Date.now())
      this.spawns.set(event.name, (this.spawns.get(event.name) ?? 0) + 1)
    }
    supervisor.on('spawn', spawned)
    supervisor.on('managed-spawn', spawned)
    supervisor.on('exit', (event: ExitEvent) => { this.forgetExited(event.name) })
    supervisor.on('managed-exit', (event: ExitEvent) => { this.forgetExited(event.name) })
  }

  /** The address Navigator listens on, once it does. */
  listening (address: string): void {
    this.address = address
  }

  /** The sticky-sessions step's observer: counts every decision (into the metrics when they are on) and notes fallbacks. */
  stickyObserver (): StickyObserver {
    const count = this.metrics?.onStickyDecision ?? (this.ownCounter as StickyCounter).observe
    return (decision, reason, machine, ctx) => {
      count(decision, reason, machine, ctx)
      if (decision === 'fallback' || decision === 're-pinned') this.fellBack(decision, machine)
    }
  }

  snapshot (): StatusSnapshot {
    const now = Date.now()
    const sources = this.sources
    const config = sources?.config() ?? null
    return {
      at: new Date(now).toISOString(),
      machine: {
        id: this.identity.machineId,
        region: this.identity.region,
        app: this.identity.appName,
        version: this.version,
        pid: process.pid,
        startedAt: new Date(this.startedAt).toISOString(),
        uptimeSeconds: (now - this.startedAt) / 1000,
        listen: this.address,
        requestsInFlight: sources?.inFlight() ?? 0,
        webSockets: sources?.webSockets.size ?? 0,
        cable: { webSockets: sources?.cable.size ?? 0, streams: sources?.cable.streams ?? 0 }
      },
      processes: sources === null || config === null ? [] : this.processes(sources.supervisor, config, now),
      sticky: {
        enabled: config !== null && config.routes.fly.stickySessions.enabled && this.identity.machineId !== null,
        ...(this.metrics?.stickyCounts() ?? (this.ownCounter as StickyCounter).counts()),
        fallbacks: [...this.fallbacks]
      }
    }
  }

  private fellBack (decision: FallbackEvent['decision'], machine: string): void {
    this.fallbacks.unshift({ at: new Date().toISOString(), machine, decision })
    if (this.fallbacks.length > RECENT_FALLBACKS) this.fallbacks.pop()
  }

  private processes (supervisor: Supervisor, config: NavigatorConfig, now: number): ProcessStatus[] {
    const found: ProcessStatus[] = []
    for (const tenant of config.applications.tenants) {
      const status = known(() => supervisor.tenantStatus(tenant.name))
      if (status === null) continue
      const restarts = Math.max((this.spawns.get(tenant.name) ?? 0) - 1, 0)
      found.push(this.process(supervisor, 'tenant', tenant.name, tenant.path, { ...status, restarts }, now))
    }
    for (const server of config.applications.standaloneServers) {
      const status = known(() => supervisor.standaloneStatus(server.name))
      if (status !== null) found.push(this.process(supervisor, 'standalone', server.name, server.matchPath, status, now))
    }
    for (const managed of config.managedProcesses) {
      const status = known(() => supervisor.managedStatus(managed.name))
      if (status !== null) found.push(this.process(supervisor, 'managed', managed.name, '', { ...status, port: null }, now))
    }
    return found
  }

  private process (supervisor: Supervisor, kind: ProcessStatus['kind'], name: string, route: string, status: { state: string, port: number | null, pid: number | null, restarts: number }, now: number): ProcessStatus {
    const spawned = status.pid === null ? undefined : this.spawnedAt.get(name)?.get(status.pid)
    return {
      kind,
      name,
      route,
      state: status.state,
      port: status.port,
      pid: status.pid,
      uptimeSeconds: spawned === undefined ? null : (now - spawned) / 1000,
      restarts: status.restarts,
      requestsInFlight: known(() => supervisor.requestsInFlight(name)) ?? 0,
      webSockets: known(() => supervisor.openWebSockets(name)) ?? 0
    }
  }

  /** An exit ends one of the name's processes: keep only the spawn time of the one the supervisor still runs. */
  private forgetExited (name: string): void {
    const byPid = this.spawnedAt.get(name)
    const running = this.sources === null ? null : runningPid(this.sources.supervisor, name)
    if (byPid === undefined) return
    for (const pid of byPid.keys()) if (pid !== running) byPid.delete(pid)
  }
}

/** The pid the supervisor runs for a process name now, else null. */
function runningPid (supervisor: Supervisor, name: string): number | null {
  return known(() => supervisor.tenantStatus(name).pid) ?? known(() => supervisor.standaloneStatus(name).pid) ?? known(() => supervisor.managedStatus(name).pid)
}

/** A status read, or null for a name the supervisor does not know (a reload just removed it). */
function known<T> (read: () => T): T | null {
  try {
    return read()
  } catch {
    return null
  }
}
