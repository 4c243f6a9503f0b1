import type { FastifyBaseLogger } from 'fastify'
import type { NavigatorConfig } from '@navigator/config'
import type { ReloadConfig } from '@navigator/supervisor'
import { withForwardOptions } from '@navigator/proxy'
import type { MaintenanceResponder, Step, UpstreamProxy, WebSocketRelay } from '@navigator/proxy'
import type { NavigatorMetrics } from '../metrics.js'
import type { NavigatorStatus } from '../status.js'
import type { CableHub } from '../cable-hub.js'
import { auth } from './auth.js'
import { cgi } from './cgi.js'
import { botDetection } from './bot-detection.js'
import { cable } from './cable.js'
import { cableBroadcast } from './cable-broadcast.js'
import { healthCheck } from './health-check.js'
import { hostname } from './hostname.js'
import { maintenanceMode } from './maintenance-mode.js'
import { metrics } from './metrics.js'
import { normalisePath } from './normalise-path.js'
import { notFound } from './not-found.js'
import { replayRules } from './replay-rules.js'
import { reverseProxies } from './reverse-proxies.js'
import { rewrites } from './rewrites.js'
import { standaloneServers } from './standalone-servers.js'
import { staticFiles, tenantsWithFolders } from './static-files.js'
import { status } from './status.js'
import { stickySessions } from './sticky-sessions.js'
import { tenants } from './tenants.js'

const UNCOMPRESSED = Object.freeze({ compress: false })

/** What the steps need from the supervisor (a `Supervisor` of @navigator/supervisor has it all). */
export interface ProcessManager {
  ensureTenant (name: string): Promise<{ port: number }>
  /** The port of a tenant that is ready now, else null (then ensureTenant starts or waits for it). */
  readyPort (name: string): number | null
  /** `cannotStart`: why its last spawn failed when it cannot succeed as configured, else null. */
  standaloneStatus (name: string): { state: string, cannotStart: string | null }
  /** True once the standalone server runs; false when it is in backoff or stopped, or after `timeoutMs`. */
  whenStandaloneRunning (name: string, timeoutMs: number): Promise<boolean>
  trackRequest (name: string): () => void
  trackWebSocket (name: string): () => void
}

export interface Identity {
  machineId: string | null
  appName: string | null
  region: string | null
}

/** Everything the steps are built from, once per configuration. */
export interface StepOptions {
  config: NavigatorConfig
  processes: ProcessManager
  proxy: UpstreamProxy
  maintenance: MaintenanceResponder
  /** 502 for a process that cannot start as configured (its command or folder missing): no promise to come back. */
  cannotStart: MaintenanceResponder
  webSockets: WebSocketRelay
  identity: Identity
  /**
   * Whether X-Forwarded-* of the client are believed (server.trust_proxy, or a Fly Machine when it is not set), as
   * decided at start: the proxy and the WebSocket relay, which outlive reloads, hold the same answer.
   */
  trustForwarded: boolean
  /** The port this Navigator listens on; other Machines are reached on it for the direct proxy. */
  port: number
  log: FastifyBaseLogger
  /** server.metrics, or null when off: the metrics step, the sticky decisions and the upstreams count into it. */
  metrics: NavigatorMetrics | null
  /** server.status, or null when off: the status step, and the sticky decisions and fallbacks it shows. */
  status: NavigatorStatus | null
  /** Navigator's environment (the CGI scripts run with it). */
  env: NodeJS.ProcessEnv
  /** `reload_config` of the CGI scripts: the server hooks' reload. */
  reloadConfig: ReloadConfig
  /** The TurboCable hub, shared by every configuration (its WebSockets outlive reloads); used when cable.enabled. */
  cable: CableHub
}

export interface Steps {
  /** In the order a request goes through them; a step the configuration does not use is left out. */
  readonly list: readonly Step[]
  /** Releases what a step runs in the background (the sticky sessions' discovery). */
  close (): Promise<void>
}

/**
 * The request pipeline, in order. This list is the one place a step is added: the raw path and Fastify both run
 * it (see ../pipeline.ts).
 *
 *   normalise-path      dot segments resolved for every step after it (400 for one hidden behind %2F)
 *   metrics             server.metrics: the metrics path answered here (or 404), never passed on
 *   status              server.status: the status page and its JSON answered here (or 404, or auth's 401 when
 *                       auth guards them), never passed on
 *   health-check        server.health_check, answered here (or proxied to its tenant, when it has no response)
 *   cable-broadcast     cable.broadcast_path: the apps' broadcasts, from this computer only (403 otherwise)
 *   hostname            server.hostname: 421 for a request that names another host
 *   rewrites            routes.redirects, then routes.rewrites, one list (the first match wins): a redirect
 *                       answered here, else the forwarded path
 *   bot-detection       bot_detection (the server's or the tenant's, forwarded path): 403 for a bot, but for a
 *                       static file with static-only
 *   static-files        a tenant's public_dir, then server.static.public_dir (below server.root_path) (forwarded path)
 *   auth                auth: 401 without a right password, before anything is proxied or replayed (static
 *                       files, the health check, the metrics, the status page and redirects are answered before
 *                       it; the status step asks it about a client that is not an allowed peer)
 *   cgi                 server.cgi_scripts: the script run, its output the answer (forwarded path)
 *   replay-rules        routes.fly.replay (original path)
 *   maintenance-mode    maintenance.enabled: the maintenance page (503) for everything that would reach an app
 *   sticky-sessions     routes.fly.sticky_sessions (original path)
 *   cable               cable.path: WebSockets answered by the TurboCable hub (original path)
 *   reverse-proxies     routes.reverse_proxies (forwarded path)
 *   standalone-servers  applications.standalone_servers (forwarded path)
 *   tenants             applications.tenants (forwarded path)
 *   not-found           404
 */
export function createSteps (options: StepOptions): Steps {
  // The server's proxy compresses responses; server.disable_compression turns that off for this configuration (a
  // reload can change it, where the proxy outlives reloads).
  if (options.config.server.disableCompression) options = { ...options, proxy: withForwardOptions(options.proxy, UNCOMPRESSED) }
  // The steps that proxy to other Machines give up on one that stops taking a request body (routes.fly.peer_write_timeout).
  const toPeers = { ...options, proxy: withForwardOptions(options.proxy, { writeProgressTimeoutMs: options.config.routes.fly.peerWriteTimeoutMs }) }
  const sticky = stickySessions(toPeers)
  const separateTenantFiles = options.config.auth !== null && tenantsWithFolders(options.config).length > 0
  const authStep = auth(options)
  const list = [
    normalisePath(),
    metrics(options),
    status(options, authStep),
    healthCheck(options),
    cableBroadcast(options),
    hostname(options),
    rewrites(options),
    botDetection(options),
    // With auth on, a tenant's own static files are served only to whom auth lets through.
    staticFiles(options, separateTenantFiles ? 'server' : 'all'),
    authStep,
    separateTenantFiles ? staticFiles(options, 'tenants') : null,
    cgi(options),
    replayRules(toPeers),
    maintenanceMode(options),
    sticky?.step ?? null,
    cable(options),
    reverseProxies(options),
    standaloneServers(options),
    tenants(options),
    notFound()
  ].filter((step): step is Step => step !== null)
  return {
    list,
    close: async () => { await sticky?.close() }
  }
}
