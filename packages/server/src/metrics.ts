import type { ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type * as PromClient from 'prom-client'
import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { ApplicationsConfig, MetricsConfig } from '@navigator/config'
import { parseReplayFailed } from '@navigator/fly-replay'
import type { ForwardOptions, UpstreamFailure, WebSocketRelay } from '@navigator/proxy'
import type { StickyDecision, StickyObserver } from '@navigator/sticky-sessions'
import type { ExitEvent, MachineIdle, ReadyEvent, RestartEvent, SpawnEvent, IdleStopEvent, Supervisor } from '@navigator/supervisor'
import { stickyCounter, type StickyCounter, type StickyCounts } from './sticky-counts.js'

// Navigator's Prometheus metrics (server.metrics), with prom-client. What is counted on the request path is counted
// in plain numbers (a `Tally` cell each, resolved once per label set) and handed to prom-client only when the
// metrics are scraped: prom-client's own inc() builds a label key string per call. Process events (spawns, exits)
// are rare and go to prom-client at once; gauges are read when scraped.

/** Upstream time to response headers, in seconds. */
export const UPSTREAM_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
/** Tenant start, spawn to ready, in seconds. */
export const START_BUCKETS: readonly number[] = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120]
/** The reasons Fly gives in `fly-replay-failed`; any other value is counted as `other`, never as sent. */
export const REPLAY_FAILED_REASONS: readonly string[] = ['timeout', 'retries_exhausted', 'no_candidate']
/** Status classes of `navigator_requests_total`; `none`: the response closed before any status was sent. */
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'none'] as const
const NO_STATUS = 5
const UPSTREAM_FAILURES: readonly UpstreamFailure[] = ['unreachable', 'timeout', 'write-timeout', 'response-failed']
/** The step that answered a request, set on its response by the pipeline's runners (when metrics are on). */
const kAnsweredBy = Symbol('navigator.answeredBy')
/** The answer a sticky decision gave a request (a replay, a fallback, a re-pin), set on its response by the metrics' sticky observer. */
const kStickyAnswer = Symbol('navigator.stickyAnswer')

type MarkedResponse = ServerResponse & { [kAnsweredBy]?: string, [kStickyAnswer]?: string }

/**
 * The `answer` label of navigator_requests_total: what answered, finer than the step. Most steps answer one way; the
 * sticky-sessions step answers with a replay, the direct proxy to another Machine or the maintenance page, and a
 * request re-pinned to this Machine is served by a later step. A step not listed here is its own answer.
 */
export const STEP_ANSWERS: Readonly<Record<string, string>> = Object.freeze({
  'normalise-path': 'bad-path',
  metrics: 'metrics',
  status: 'status',
  'health-check': 'health',
  'cable-broadcast': 'cable-broadcast',
  hostname: 'wrong-host',
  rewrites: 'redirect',
  'bot-detection': 'bot-refused',
  'static-files': 'static',
  auth: 'auth-refused',
  'tenant-static-files': 'static',
  cgi: 'cgi',
  'replay-rules': 'replay-rule',
  'maintenance-mode': 'maintenance',
  'sticky-sessions': 'sticky-direct-proxy',
  cable: 'cable',
  'reverse-proxies': 'reverse-proxy',
  'standalone-servers': 'standalone',
  tenants: 'tenant',
  'not-found': 'not-found',
  none: 'none'
})
/** The answers a sticky decision gives: the sticky step's own, or a re-pin served by whichever step came next. */
const STICKY_ANSWERS: Partial<Record<StickyDecision, string>> = { replayed: 'sticky-replay', fallback: 'fallback-maintenance', 're-pinned': 'fallback-re-pin' }

type Labels = Record<string, string>
/** One counted series: `value` grows on the request path, `reported` is what prom-client has been given. */
interface Cell { readonly labels: Labels, value: number, reported: number }

/** Counts of one prom-client counter, kept as numbers until a scrape hands the increase over. */
class Tally {
  private readonly cells: Cell[] = []
  constructor (private readonly counter: Counter<string>) {}

  cell (labels: Labels): Cell {
    const cell: Cell = { labels, value: 0, reported: -1 }
    this.cells.push(cell)
    return cell
  }

  /** Every cell appears once scraped, at 0 when nothing happened, so that rate() sees its first increase. */
  flush (): void {
    for (const cell of this.cells) {
      if (cell.value === cell.reported) continue
      this.counter.inc(cell.labels, cell.value - Math.max(cell.reported, 0))
      cell.reported = cell.value
    }
  }
}

let promClientModule: typeof PromClient | null = null

/**
 * prom-client, loaded when a configuration first turns the metrics on: this module is loaded by every Navigator
 * (the pipeline marks which step answered), and a Navigator without `server.metrics` never pays for the client.
 */
function promClient (): typeof PromClient {
  promClientModule ??= createRequire(import.meta.url)('prom-client') as typeof PromClient
  return promClientModule
}

function tallied (registry: Registry, name: string, help: string, labelNames: string[]): Tally {
  let tally: Tally | null = null
  const counter = new (promClient().Counter)({ name, help, labelNames, registers: [registry], collect () { tally?.flush() } })
  tally = new Tally(counter)
  return tally
}

/** Marks the step that answered a request (the pipeline's runners call it when metrics are on). */
export function markAnswered (res: ServerResponse, step: string): void {
  (res as MarkedResponse)[kAnsweredBy] = step
}

/** What the gauges read when scraped; set once the server is assembled. */
export interface MetricsSources {
  supervisor: Supervisor
  webSockets: WebSocketRelay
  /** The TurboCable hub's open WebSockets. */
  cable: { size: number }
  /** The applications of the configuration now in force. */
  applications: () => ApplicationsConfig
  /** The managed processes of the configuration now in force. */
  managed: () => ReadonlyArray<{ name: string }>
  /** Requests and pending WebSocket handshakes in flight. */
  inFlight: () => number
  machineIdle: MachineIdle | null
}

/** The upstream hooks of one tenant or standalone server, made once and shared by every request to it. */
type UpstreamHooks = Required<Pick<ForwardOptions, 'onResponseHeaders' | 'onUpstreamError'>>

/** The counters of process events, by the label they are kept under. */
interface ProcessTallies {
  unexpected: Counter<'process' | 'kind'>
  restarts: Counter<'server'>
  idleStops: Counter<'tenant'>
  tenantRestarts: Counter<'tenant'>
  managedRestarts: Counter<'process'>
}

export class NavigatorMetrics {
  readonly registry: Registry = new (promClient().Registry)()
  /** The headers of a scrape's answer: the registry's text format, never cached. */
  readonly answerHeaders: readonly string[] = Object.freeze(['content-type', this.registry.contentType, 'cache-control', 'no-store'])
  readonly settings: MetricsConfig
  /** Counts a sticky decision; handed to the sticky-sessions step. */
  readonly onStickyDecision: StickyObserver
  private readonly sticky: StickyCounter
  private readonly requests: Tally
  /** The cells of each step's usual answer, and of each sticky answer by the step that gave it. */
  private readonly byStep = new Map<string, Cell[]>()
  private readonly byStickyAnswer = new Map<string, Map<string, Cell[]>>()
  private readonly replayFailed = new Map<string, Cell>()
  private readonly upstreamErrors: Tally
  private readonly upstreamSeconds: Histogram<string>
  private readonly upstreams = new Map<string, UpstreamHooks>()
  private readonly startSeconds: Histogram<string>
  private readonly startedTenants = new Set<string>()
  /** Tenants, standalone servers and managed processes whose counters have their zero series. */
  private readonly knownProcesses = new Set<string>()
  /** The process counters (`processCounters`): every configured process has its series at 0 until it counts. */
  private processTallies: ProcessTallies | null = null
  private sources: MetricsSources | null = null

  constructor (settings: MetricsConfig) {
    this.settings = settings
    const registry = this.registry
    promClient().collectDefaultMetrics({ register: registry })
    this.requests = tallied(registry, 'navigator_requests_total', 'HTTP requests, by the step of the pipeline that answered (none: the response closed first), what it answered with, and the status class.', ['step', 'answer', 'status_class'])
    this.sticky = this.stickyCounter()
    const observe = this.sticky.observe
    // Only a decision that changes the answer is noted on the response: a visitor served here (new, own) costs no write.
    this.onStickyDecision = (decision, reason, machine, ctx) => {
      observe(decision, reason, machine, ctx)
      const answer = STICKY_ANSWERS[decision]
      if (answer !== undefined) (ctx.res as MarkedResponse)[kStickyAnswer] = answer
    }
    const replayFailed = tallied(registry, 'navigator_fly_replay_failed_total', 'Requests that arrived with fly-replay-failed (Fly handed a replay back), by reason.', ['reason'])
    for (const reason of [...REPLAY_FAILED_REASONS, 'other']) this.replayFailed.set(reason, replayFailed.cell({ reason }))
    const metrics = this
    const { Histogram } = promClient()
    // Registered before the failures: its collect makes every configured upstream's cells, which the failures'
    // collect then reports in the same scrape.
    this.upstreamSeconds = new Histogram({
      name: 'navigator_upstream_response_seconds',
      help: 'Time from handing a request to the proxy to the response headers of a tenant or standalone server.',
      labelNames: ['upstream', 'kind'],
      buckets: [...UPSTREAM_BUCKETS],
      registers: [registry],
      collect () { metrics.knowConfigured() }
    })
    this.upstreamErrors = tallied(registry, 'navigator_upstream_errors_total', 'Requests to a tenant or standalone server that failed upstream, by failure.', ['upstream', 'kind', 'failure'])
    this.startSeconds = new Histogram({ name: 'navigator_tenant_start_seconds', help: 'Tenant starts, from spawn to ready.', labelNames: ['tenant'], buckets: [...START_BUCKETS], registers: [registry] })
    this.processGauges()
  }

  /** Counts a request whose response closed; `this` is not needed, so the server's one close listener calls it. */
  requestClosed (res: ServerResponse): void {
    const marked = res as MarkedResponse
    const step = marked[kAnsweredBy] ?? 'none'
    const stickyAnswer = marked[kStickyAnswer]
    const cells = stickyAnswer === undefined ? this.stepCells(step) : this.stickyCells(step, stickyAnswer)
    const status = res.statusCode
    cells[res.headersSent && status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : NO_STATUS].value++
  }

  private stepCells (step: string): Cell[] {
    let cells = this.byStep.get(step)
    if (cells === undefined) {
      cells = this.requestCells(step, STEP_ANSWERS[step] ?? step)
      this.byStep.set(step, cells)
    }
    return cells
  }

  private stickyCells (step: string, answer: string): Cell[] {
    let byStep = this.byStickyAnswer.get(answer)
    if (byStep === undefined) this.byStickyAnswer.set(answer, byStep = new Map())
    let cells = byStep.get(step)
    if (cells === undefined) {
      cells = this.requestCells(step, answer)
      byStep.set(step, cells)
    }
    return cells
  }

  private requestCells (step: string, answer: string): Cell[] {
    return STATUS_CLASSES.map((statusClass) => this.requests.cell({ step, answer, status_class: statusClass }))
  }

  /** Counts a request that carries `fly-replay-failed`. */
  replayFailedArrived (header: string | string[]): void {
    const reason = parseReplayFailed(header)?.reason
    const cell = this.replayFailed.get(reason !== undefined && REPLAY_FAILED_REASONS.includes(reason) ? reason : 'other') as Cell
    cell.value++
  }

  /** The hooks of one upstream for the proxy's forward options: its latency and failures, resolved once. */
  upstreamHooks (kind: 'tenant' | 'standalone', name: string): UpstreamHooks {
    const key = `${kind}\u0000${name}`
    let hooks = this.upstreams.get(key)
    if (hooks !== undefined) return hooks
    // Every upstream of the configuration has its series from the first scrape on, at 0 until it is used.
    this.upstreamSeconds.zero({ upstream: name, kind })
    const latency = this.upstreamSeconds.labels({ upstream: name, kind })
    const failures = new Map(UPSTREAM_FAILURES.map((failure) => [failure, this.upstreamErrors.cell({ upstream: name, kind, failure })]))
    hooks = Object.freeze({
      onResponseHeaders: (elapsedMs: number) => { latency.observe(elapsedMs / 1000) },
      onUpstreamError: (failure: UpstreamFailure) => { (failures.get(failure) as Cell).value++ }
    })
    this.upstreams.set(key, hooks)
    return hooks
  }

  /** The sticky decisions and rejected cookies counted so far (for the status page: the same numbers, not a second count). */
  stickyCounts (): StickyCounts {
    return this.sticky.counts()
  }

  /** The scrape: the Prometheus text of every metric. */
  async scrape (): Promise<string> {
    return await this.registry.metrics()
  }

  /** Starts counting the processes' events and reading what the gauges show. */
  watch (sources: MetricsSources): void {
    this.sources = sources
    this.processCounters(sources.supervisor)
    this.machineIdleCounters(sources.machineIdle)
  }

  /** The series of every tenant and standalone server of the configuration in force, at 0 until they count. */
  private knowConfigured (): void {
    const sources = this.sources
    if (sources === null) return
    const applications = sources.applications()
    for (const tenant of applications.tenants) {
      this.upstreamHooks('tenant', tenant.name)
      this.knowTenant(tenant.name)
    }
    for (const server of applications.standaloneServers) {
      this.upstreamHooks('standalone', server.name)
      this.knowProcess(`standalone\u0000${server.name}`, (tallies) => {
        tallies.unexpected.inc({ process: server.name, kind: 'standalone' }, 0)
        tallies.restarts.inc({ server: server.name }, 0)
      })
    }
    for (const managed of sources.managed()) {
      this.knowProcess(`managed\u0000${managed.name}`, (tallies) => { tallies.managedRestarts.inc({ process: managed.name }, 0) })
    }
  }

  private knowTenant (name: string): void {
    if (!this.startedTenants.has(name)) {
      this.startedTenants.add(name)
      this.startSeconds.zero({ tenant: name })
    }
    this.knowProcess(`tenant\u0000${name}`, (tallies) => {
      tallies.unexpected.inc({ process: name, kind: 'tenant' }, 0)
      tallies.tenantRestarts.inc({ tenant: name }, 0)
      tallies.idleStops.inc({ tenant: name }, 0)
    })
  }

  private knowProcess (key: string, zero: (tallies: ProcessTallies) => void): void {
    const tallies = this.processTallies
    if (tallies === null || this.knownProcesses.has(key)) return
    this.knownProcesses.add(key)
    zero(tallies)
  }

  private stickyCounter (): StickyCounter {
    const decisions = tallied(this.registry, 'navigator_sticky_decisions_total', 'Requests on sticky paths, by what the sticky-sessions step decided.', ['decision'])
    const rejections = tallied(this.registry, 'navigator_sticky_rejected_cookies_total', 'Sticky cookies (or sticky headers) rejected, by reason; each is also a rejected decision.', ['reason'])
    return stickyCounter((decision) => decisions.cell({ decision }), (reason) => rejections.cell({ reason }))
  }

  private processGauges (): void {
    const metrics = this
    const registers = [this.registry]
    const { Gauge } = promClient()
    /* eslint-disable no-new -- each registers itself with the registry, and its collect reads the sources */
    new Gauge({
      name: 'navigator_tenants',
      help: 'Tenants of the configuration in force, by state.',
      labelNames: ['state'],
      registers,
      collect () { metrics.collectTenants(this) }
    })
    new Gauge({
      name: 'navigator_standalone_up',
      help: '1 while a standalone server runs, else 0.',
      labelNames: ['server'],
      registers,
      collect () { metrics.collectStandalone(this) }
    })
    new Gauge({
      name: 'navigator_managed_up',
      help: '1 while a managed process runs, else 0.',
      labelNames: ['process'],
      registers,
      collect () { metrics.collectManaged(this) }
    })
    new Gauge({
      name: 'navigator_websockets_open',
      help: 'WebSockets open now: relayed to an app (relayed), or held by the TurboCable hub (cable).',
      labelNames: ['kind'],
      registers,
      collect () {
        this.set({ kind: 'relayed' }, metrics.sources?.webSockets.size ?? 0)
        this.set({ kind: 'cable' }, metrics.sources?.cable.size ?? 0)
      }
    })
    new Gauge({
      name: 'navigator_requests_in_flight',
      help: 'Requests and WebSocket handshakes in flight.',
      registers,
      collect () { this.set(metrics.sources?.inFlight() ?? 0) }
    })
    /* eslint-enable no-new */
  }

  private collectTenants (gauge: Gauge<string>): void {
    const counts: Record<string, number> = { stopped: 0, starting: 0, ready: 0, stopping: 0 }
    const sources = this.sources
    if (sources !== null) {
      for (const tenant of sources.applications().tenants) {
        const state = sources.supervisor.tenantStatus(tenant.name).state
        counts[state] = (counts[state] ?? 0) + 1
      }
    }
    for (const state in counts) gauge.set({ state }, counts[state])
  }

  private collectStandalone (gauge: Gauge<string>): void {
    gauge.reset()
    const sources = this.sources
    if (sources === null) return
    for (const server of sources.applications().standaloneServers) {
      gauge.set({ server: server.name }, sources.supervisor.standaloneStatus(server.name).state === 'running' ? 1 : 0)
    }
  }

  private collectManaged (gauge: Gauge<string>): void {
    gauge.reset()
    const sources = this.sources
    if (sources === null) return
    for (const managed of sources.managed()) {
      gauge.set({ process: managed.name }, sources.supervisor.managedStatus(managed.name).state === 'running' ? 1 : 0)
    }
  }

  private processCounters (supervisor: Supervisor): void {
    const registers = [this.registry]
    const { Counter } = promClient()
    const unexpected = new Counter({ name: 'navigator_process_unexpected_exits_total', help: 'Tenants and standalone servers that exited without being asked to (a tenant starts again on its next request, a standalone server after its backoff).', labelNames: ['process', 'kind'], registers })
    const restarts = new Counter({ name: 'navigator_standalone_restarts_total', help: 'Standalone server restarts scheduled after an exit or a failed spawn.', labelNames: ['server'], registers })
    const idleStops = new Counter({ name: 'navigator_tenant_idle_stops_total', help: 'Tenants stopped for being idle (applications.idle_timeout).', labelNames: ['tenant'], registers })
    const tenantRestarts = new Counter({ name: 'navigator_tenant_restarts_total', help: 'Tenants started again after they exited without being asked to (the start that follows an unexpected exit).', labelNames: ['tenant'], registers })
    const managedRestarts = new Counter({ name: 'navigator_managed_restarts_total', help: 'Managed process restarts scheduled after a failed exit or spawn (auto_restart).', labelNames: ['process'], registers })
    this.processTallies = { unexpected, restarts, idleStops, tenantRestarts, managedRestarts }
    const kinds = new Map<string, 'tenant' | 'standalone'>()
    const spawnedAt = new Map<string, number>()
    const exitedUnexpectedly = new Set<string>()
    supervisor.on('spawn', (event: SpawnEvent) => {
      kinds.set(event.name, event.kind)
      if (event.kind !== 'tenant') return
      spawnedAt.set(event.name, performance.now())
      if (exitedUnexpectedly.delete(event.name)) tenantRestarts.inc({ tenant: event.name })
    })
    supervisor.on('ready', (event: ReadyEvent) => {
      const at = spawnedAt.get(event.name)
      if (at === undefined) return
      spawnedAt.delete(event.name)
      this.knowTenant(event.name)
      this.startSeconds.observe({ tenant: event.name }, (performance.now() - at) / 1000)
    })
    supervisor.on('exit', (event: ExitEvent) => {
      spawnedAt.delete(event.name)
      if (event.expected) return
      const kind = kinds.get(event.name) ?? 'tenant'
      unexpected.inc({ process: event.name, kind })
      if (kind === 'tenant') exitedUnexpectedly.add(event.name)
    })
    supervisor.on('restart', (event: RestartEvent) => { restarts.inc({ server: event.name }) })
    supervisor.on('managed-restart', (event: { name: string }) => { managedRestarts.inc({ process: event.name }) })
    supervisor.on('idle-stop', (event: IdleStopEvent) => { idleStops.inc({ tenant: event.name }) })
  }

  private machineIdleCounters (machineIdle: MachineIdle | null): void {
    const registers = [this.registry]
    const { Counter } = promClient()
    const idle = new Counter({ name: 'navigator_machine_idle_total', help: 'Suspends or stops of this Machine that the Machines API accepted (server.idle), by action.', labelNames: ['action'], registers })
    const resumes = new Counter({ name: 'navigator_machine_resumes_total', help: 'Resumes of this Machine after an accepted suspend.', registers })
    machineIdle?.on('accepted', (event: { action: string }) => { idle.inc({ action: event.action }) })
    machineIdle?.on('resumed', () => { resumes.inc() })
  }
}
