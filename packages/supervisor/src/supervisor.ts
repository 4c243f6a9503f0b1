import { EventEmitter } from 'node:events'
import type { ApplicationsConfig, ManagedProcessConfig } from '@navigator/config'
import type { SupervisorContext } from './context.js'
import type { ReloadConfig } from './hooks.js'
import { InvalidOptionError, StoppedError, UnknownTenantError } from './errors.js'
import type { SupervisorLogger } from './logger.js'
import { PortAllocator } from './ports.js'
import { TenantPool } from './pool.js'
import { MemoryLimits } from './cgroup.js'
import {
  RESTART_BACKOFF_INITIAL_MS,
  RESTART_BACKOFF_MAX_MS,
  RESTART_BACKOFF_RESET_MS,
  StandaloneServer,
  standaloneSignature,
  type RestartBackoff,
  type StandaloneStatus
} from './standalone.js'
import { ManagedProcess, managedSignature, type ManagedStatus } from './managed.js'
import { Tenant, type TenantStatus } from './tenant.js'
import { tenantSignature } from './tenant-launch.js'

/** Children listen on, and are probed at, this host unless told otherwise. */
export const DEFAULT_HOST = '127.0.0.1'
/** Time between SIGTERM and SIGKILL when stopping a process group. */
export const DEFAULT_STOP_GRACE_MS = 5000
/** How long update() lets a replaced process finish its requests before stopping it (the server passes shutdown_timeout). */
export const DEFAULT_DRAIN_MS = 30_000

export interface UpdateOptions {
  /** Wait at most this long for a replaced or removed process's requests (and a tenant's WebSockets); default the constructor's drainMs. */
  drainMs?: number
}

export interface SupervisorOptions {
  applications: ApplicationsConfig
  logger: SupervisorLogger
  /** Navigator's environment handed to children; default `process.env`. */
  env?: NodeJS.ProcessEnv
  host?: string
  stopGraceMs?: number
  /** Default drain limit of update(); default DEFAULT_DRAIN_MS. */
  drainMs?: number
  /** Standalone server restart backoff; defaults to 100 ms doubling to 30 s, reset after 60 s up. */
  restartBackoff?: Partial<RestartBackoff>
  /** The top-level `managed_processes`: started first (after their start_delay), stopped last, in reverse order. */
  managedProcesses?: ManagedProcessConfig[]
  /** The cgroup v2 directory tenants' cgroups (memory_limit) are created in; default Navigator's own cgroup. */
  cgroupDir?: string
  /** How tenant hooks follow `reload_config` (in the background); absent = they do not. */
  reload?: ReloadConfig
}

export interface SpawnEvent { name: string, kind: 'tenant' | 'standalone', pid: number, port: number }
export interface ReadyEvent { name: string, port: number }
export interface ExitEvent { name: string, code: number | null, signal: NodeJS.Signals | null, expected: boolean }
export interface RestartEvent { name: string, delayMs: number }
export interface IdleStopEvent { name: string }
export interface OutputEvent { name: string, stream: 'stdout' | 'stderr', line: string }
export interface ManagedSpawnEvent { name: string, pid: number }

/**
 * Starts, watches, restarts and stops Navigator's child processes: tenants (lazy or eager,
 * one port each from `startPort`) and standalone servers (fixed ports, restarted with backoff).
 *
 * Events: 'spawn' SpawnEvent, 'ready' ReadyEvent, 'exit' ExitEvent, 'restart' RestartEvent (standalone
 * servers), 'idle-stop' IdleStopEvent (tenants), 'output' OutputEvent.
 */
/** The shape both the constructor and update() require: the lists of tenants and standalone servers. */
function isApplicationsConfig (applications: unknown): applications is ApplicationsConfig {
  if (applications === null || typeof applications !== 'object') return false
  const { tenants, standaloneServers } = applications as Partial<ApplicationsConfig>
  return Array.isArray(tenants) && Array.isArray(standaloneServers)
}

export class Supervisor extends EventEmitter {
  private readonly context: SupervisorContext
  private readonly backoff: RestartBackoff
  private readonly tenants = new Map<string, Tenant>()
  private readonly standalone = new Map<string, StandaloneServer>()
  /** Tenants a reload replaced or removed, until their process group is stopped. */
  private readonly retired = new Set<Tenant>()
  /** The pending drain-and-restart (or stop) of each standalone server a reload changed. */
  private readonly serverChanges = new Map<StandaloneServer, Promise<void>>()
  private readonly drainMs: number
  private closed = false
  /** In configuration order: started in it, stopped in reverse. */
  private managed: ManagedProcess[] = []

  constructor (options: SupervisorOptions) {
    super()
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('options must be an object')
    if (!isApplicationsConfig(options.applications)) throw new InvalidOptionError('applications must be the normalised ApplicationsConfig')
    if (options.logger === null || typeof options.logger?.child !== 'function') throw new InvalidOptionError('logger must be a pino-like logger with info, warn, error, debug and child')
    const stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS
    if (!Number.isFinite(stopGraceMs) || stopGraceMs < 0) throw new InvalidOptionError(`stopGraceMs must be a non-negative number, got ${String(options.stopGraceMs)}`)
    const drainMs = options.drainMs ?? DEFAULT_DRAIN_MS
    if (!Number.isFinite(drainMs) || drainMs < 0) throw new InvalidOptionError(`drainMs must be a non-negative number, got ${String(options.drainMs)}`)
    this.drainMs = drainMs
    const host = options.host ?? DEFAULT_HOST
    this.backoff = {
      initialMs: options.restartBackoff?.initialMs ?? RESTART_BACKOFF_INITIAL_MS,
      maxMs: options.restartBackoff?.maxMs ?? RESTART_BACKOFF_MAX_MS,
      resetAfterMs: options.restartBackoff?.resetAfterMs ?? RESTART_BACKOFF_RESET_MS
    }
    if (options.cgroupDir !== undefined && typeof options.cgroupDir !== 'string') throw new InvalidOptionError('cgroupDir must be a directory path')
    this.context = {
      events: this,
      logger: options.logger,
      ports: new PortAllocator(host),
      host,
      env: options.env ?? process.env,
      stopGraceMs,
      pool: new TenantPool(options.logger, () => this.context.applications.maxSize ?? 0),
      memoryLimits: new MemoryLimits(options.logger, options.cgroupDir ?? null),
      reload: options.reload === undefined ? undefined : { ...options.reload, background: true },
      applications: options.applications
    }
    this.load(options.applications)
    const managed = options.managedProcesses ?? []
    if (!Array.isArray(managed)) throw new InvalidOptionError('managedProcesses must be the normalised list of managed processes')
    this.managed = managed.map((config) => new ManagedProcess(this.context, config, this.backoff))
  }

  /**
   * Spawns every standalone server and starts every eager tenant. Resolves once the standalone
   * servers are spawned; it does not wait for anything to be ready (requests wait through
   * ensureTenant). An eager tenant that fails to start is logged and retried on its first request.
   */
  async start (): Promise<void> {
    this.closed = false
    this.checkMemoryLimits()
    // First, in order: a worker may need Redis before any app does.
    for (const managed of this.managed) await managed.start()
    await Promise.all([...this.standalone.values()].map((server) => server.start()))
    for (const tenant of this.tenants.values()) {
      if (tenant.config.start === 'eager') this.startEager(tenant)
    }
  }

  /**
   * Resolves with the tenant's port once it answers its health check, starting it when needed.
   * Concurrent callers share one start. Rejects with NAV_SUPERVISOR_UNKNOWN_TENANT,
   * NAV_SUPERVISOR_STARTUP_TIMEOUT, NAV_SUPERVISOR_SPAWN_FAILED or NAV_SUPERVISOR_STOPPED.
   */
  ensureTenant (name: string): Promise<{ port: number }> {
    const tenant = this.tenants.get(name)
    if (tenant === undefined) return Promise.reject(new UnknownTenantError(name))
    if (this.closed) return Promise.reject(new StoppedError(name))
    // A caller still waiting when a reload replaces the tenant is moved to the new instance, so a request
    // is never proxied to (nor counted against the wrong instance of) a process that is being retired.
    return tenant.ensure().then(
      (result) => this.tenants.get(name) === tenant || this.closed ? result : this.ensureTenant(name),
      (err: unknown) => {
        if (this.tenants.get(name) === tenant || this.closed || !this.tenants.has(name)) throw err
        return this.ensureTenant(name)
      }
    )
  }

  tenantStatus (name: string): TenantStatus {
    const tenant = this.tenants.get(name)
    if (tenant === undefined) throw new UnknownTenantError(name)
    return tenant.status()
  }

  standaloneStatus (name: string): StandaloneStatus {
    const server = this.standalone.get(name)
    if (server === undefined) throw new UnknownTenantError(name)
    return server.status()
  }

  /**
   * Resolves true once the standalone server runs, false when it is in backoff or stopped, fails to start, or
   * takes longer than `timeoutMs` (a request that arrives while it starts waits like a tenant request).
   */
  whenStandaloneRunning (name: string, timeoutMs: number): Promise<boolean> {
    const server = this.standalone.get(name)
    if (server === undefined) return Promise.reject(new UnknownTenantError(name))
    return server.whenRunning(timeoutMs)
  }

  /** Counts a request to a tenant or standalone server as in flight until the returned function is called. */
  trackRequest (name: string): () => void {
    return this.process(name).trackRequest()
  }

  /** Counts an open WebSocket to a tenant or standalone server until the returned function is called. */
  trackWebSocket (name: string): () => void {
    return this.process(name).trackWebSocket()
  }

  /** Open WebSockets of one tenant or standalone server, or of all of them. */
  openWebSockets (name?: string): number {
    if (name !== undefined) return this.process(name).openWebSockets
    let total = 0
    for (const tenant of this.tenants.values()) total += tenant.openWebSockets
    for (const server of this.standalone.values()) total += server.openWebSockets
    return total
  }

  /** Tracked requests in flight to one tenant or standalone server, or to all of them. */
  requestsInFlight (name?: string): number {
    if (name !== undefined) return this.process(name).requestsInFlight
    let total = 0
    for (const tenant of this.tenants.values()) total += tenant.requestsInFlight
    for (const server of this.standalone.values()) total += server.requestsInFlight
    return total
  }

  /**
   * Applies a reloaded configuration without cutting tracked requests short (up to `drainMs`).
   *
   * The new configuration is registered synchronously, before update() returns its promise: from then
   * on ensureTenant() and trackRequest() see it. Unchanged processes keep running untouched. A changed
   * tenant (command, args, env, var, working directory, health check) is replaced: new requests go to a
   * fresh instance (started lazily on a new port, or at once when eager) and the old process group is
   * stopped once its tracked requests and WebSockets are done, or after `drainMs`. A removed tenant is
   * retired the same way. A changed standalone server (one fixed port, so it cannot run twice) is
   * restarted once its in-flight requests are done or after `drainMs`; the restart closes its open
   * WebSockets. A removed one is stopped after the same wait.
   *
   * Throws NAV_SUPERVISOR_INVALID_OPTION synchronously (nothing applied) for a bad option. The promise
   * resolves once every retired process has stopped and every new or changed one has been spawned.
   */
  update (applications: ApplicationsConfig, options: UpdateOptions = {}): Promise<void> {
    if (!isApplicationsConfig(applications)) throw new InvalidOptionError('applications must be the normalised ApplicationsConfig')
    const drainMs = options.drainMs ?? this.drainMs
    if (!Number.isFinite(drainMs) || drainMs < 0) throw new InvalidOptionError(`drainMs must be a non-negative number, got ${String(options.drainMs)}`)

    const previous = this.context.applications
    const retiring: Promise<void>[] = []
    const replacedTenants: Tenant[] = []
    const restarting: Promise<void>[] = []
    const nextTenants = new Map(applications.tenants.map((tenant) => [tenant.name, tenant]))
    const nextServers = new Map(applications.standaloneServers.map((server) => [server.name, server]))

    for (const [name, tenant] of this.tenants) {
      const next = nextTenants.get(name)
      if (next === undefined) {
        this.tenants.delete(name)
        retiring.push(this.retireTenant(tenant, drainMs))
      } else if (tenantSignature(previous, tenant.config) !== tenantSignature(applications, next)) {
        const fresh = new Tenant(this.context, next)
        this.tenants.set(name, fresh)
        replacedTenants.push(fresh)
        retiring.push(this.retireTenant(tenant, drainMs))
      } else {
        tenant.config = next
      }
    }
    for (const [name, server] of this.standalone) {
      const next = nextServers.get(name)
      if (next === undefined) {
        this.standalone.delete(name)
        retiring.push(this.afterDrain(server, drainMs, async () => { await server.stop() }))
      } else if (standaloneSignature(server.config) !== standaloneSignature(next)) {
        server.config = next
        restarting.push(this.afterDrain(server, drainMs, async () => {
          await server.stop()
          if (!this.closed && this.standalone.get(name) === server) await server.start()
        }))
      } else {
        server.config = next
      }
    }
    this.context.applications = applications
    this.checkMemoryLimits()
    const added = this.load(applications)
    for (const tenant of this.tenants.values()) tenant.refresh()
    for (const tenant of [...replacedTenants, ...added.tenants]) {
      if (tenant.config.start === 'eager' && !this.closed) this.startEager(tenant)
    }
    return Promise.all([
      ...retiring,
      ...restarting,
      ...added.servers.map(async (server) => { if (!this.closed) await server.start() })
    ]).then(() => {})
  }

  /** Stops every process: SIGTERM to each process group, SIGKILL after stopGraceMs. */
  async stop (): Promise<void> {
    this.closed = true
    await Promise.all([
      ...[...this.tenants.values()].map((tenant) => tenant.stop()),
      ...[...this.retired].map((tenant) => tenant.stop()),
      ...[...this.standalone.values()].map((server) => server.stop())
    ])
    // After the apps that use them, last started first stopped (Rails, then Sidekiq, then Redis).
    for (const managed of [...this.managed].reverse()) await managed.stop()
  }

  /** Status of a managed process; NAV_SUPERVISOR_UNKNOWN_TENANT for a name that is not one. */
  managedStatus (name: string): ManagedStatus {
    const managed = this.managed.find((process) => process.name === name)
    if (managed === undefined) throw new UnknownTenantError(name)
    return managed.status()
  }

  /**
   * Applies a reloaded `managed_processes`: an unchanged process (command, args, working directory, env) keeps
   * running with the new auto_restart and start_delay; a changed one is stopped and started again, a removed one
   * stopped, a new one started (each start waits its start_delay). Resolves once all of that is done.
   */
  async updateManagedProcesses (configs: ManagedProcessConfig[]): Promise<void> {
    if (!Array.isArray(configs)) throw new InvalidOptionError('managedProcesses must be the normalised list of managed processes')
    if (this.closed) return
    const previous = new Map(this.managed.map((process) => [process.name, process]))
    const changes: Promise<void>[] = []
    this.managed = configs.map((config) => {
      const current = previous.get(config.name)
      previous.delete(config.name)
      if (current === undefined) {
        const fresh = new ManagedProcess(this.context, config, this.backoff)
        changes.push(fresh.start())
        return fresh
      }
      const changed = managedSignature(current.config) !== managedSignature(config)
      current.config = config
      if (changed) changes.push(current.stop().then(async () => { if (!this.closed) await current.start() }))
      return current
    })
    for (const removed of previous.values()) changes.push(removed.stop())
    await Promise.all(changes)
  }

  /** Stops a replaced or removed tenant once it is idle (or after drainMs); stop() stops it at once. */
  private async retireTenant (tenant: Tenant, drainMs: number): Promise<void> {
    this.retired.add(tenant)
    try {
      await tenant.retire(drainMs)
    } finally {
      this.retired.delete(tenant)
    }
  }

  /** Runs `then` for a standalone server after its requests drained; restarts of one server run one after another. */
  private afterDrain (server: StandaloneServer, drainMs: number, then: () => Promise<void>): Promise<void> {
    const previous = this.serverChanges.get(server) ?? Promise.resolve()
    const change = previous.then(async () => {
      await server.drainRequests(drainMs)
      await then()
    }).catch((err: Error) => {
      this.context.logger.error({ process: server.name, err }, 'applying a reloaded configuration to a standalone server failed')
    })
    this.serverChanges.set(server, change)
    void change.then(() => { if (this.serverChanges.get(server) === change) this.serverChanges.delete(server) })
    return change
  }

  /** Creates the tenants and standalone servers not known yet; returns them. */
  private load (applications: ApplicationsConfig): { tenants: Tenant[], servers: StandaloneServer[] } {
    this.context.ports.setFixedPorts(applications.standaloneServers.map((server) => server.port))
    const tenants: Tenant[] = []
    const servers: StandaloneServer[] = []
    for (const config of applications.tenants) {
      if (this.tenants.has(config.name)) continue
      const tenant = new Tenant(this.context, config)
      this.tenants.set(config.name, tenant)
      tenants.push(tenant)
    }
    for (const config of applications.standaloneServers) {
      if (this.standalone.has(config.name)) continue
      const server = new StandaloneServer(this.context, config, this.backoff)
      this.standalone.set(config.name, server)
      servers.push(server)
    }
    return { tenants, servers }
  }

  /** One warning, the first time a configuration has a memory_limit that cannot be enforced here. */
  private checkMemoryLimits (): void {
    const { applications } = this.context
    if ((applications.memoryLimit ?? null) !== null || applications.tenants.some((tenant) => (tenant.memoryLimit ?? null) !== null)) {
      this.context.memoryLimits.check()
    }
  }

  private startEager (tenant: Tenant): void {
    tenant.ensure().catch((err: Error) => {
      this.context.logger.error({ process: tenant.name, err }, 'eager tenant did not start; it is retried on its first request')
    })
  }

  private process (name: string): Tenant | StandaloneServer {
    const found = this.tenants.get(name) ?? this.standalone.get(name)
    if (found === undefined) throw new UnknownTenantError(name)
    return found
  }
}
