import type { Server } from 'node:http'
import Fastify from 'fastify'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { loadConfig, parseDuration } from '@navigator/config'
import type { NavigatorConfig, ServerHooks } from '@navigator/config'
import { createUpstreamProxy, WebSocketRelay } from '@navigator/proxy'
import type { UpstreamProxy } from '@navigator/proxy'
import { processSupervisor, runHooks, runHooksOrFail, Supervisor, type HookRun } from '@navigator/supervisor'
import { CableHub, CABLE_PING_INTERVAL_MS } from './cable-hub.js'
import { InvalidCablePingIntervalError, InvalidUpstreamTimeoutError } from './errors.js'
import { Generations, type Generation } from './generations.js'
import { concretePort, connectableAddress, createHttpServer, listenOn } from './http-server.js'
import { trustsForwarded } from './forwarded.js'
import { identityFrom, nonEmpty } from './identity.js'
import { fastifyLogging, loggerOptions, logsRequests } from './logging.js'
import { cannotStartFor, maintenanceFor } from './maintenance.js'
import { NavigatorMetrics } from './metrics.js'
import { listenForMetrics } from './metrics-access.js'
import { createPipeline, pipelinePlugin, type Pipeline } from './pipeline.js'
import { machineIdleFor, processManager } from './processes.js'
import { reload } from './reload.js'
import { shutdown } from './shutdown.js'
import { NavigatorStatus } from './status.js'
import { createSteps, type StepOptions } from './steps/index.js'
import { navigatorVersion } from './version.js'

/**
 * How long a proxied request waits for the upstream's response headers before the client gets a 504. There is no
 * config key for it (the Go Navigator has none); NAVIGATOR_UPSTREAM_TIMEOUT (a Go duration) or the
 * `upstreamTimeoutMs` option changes it.
 */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000
/**
 * A minor garbage collection runs every this many bytes of proxied request bodies, so that dead body chunks do not
 * pile up in a large upload (bench/upload.mjs; figures in bench/README.md).
 */
export const UPLOAD_BYTES_PER_MINOR_GC = 4 * 1024 * 1024

export interface BuildServerOptions {
  /** Environment for identity (FLY_MACHINE_ID, FLY_APP_NAME, FLY_REGION), LOG_LEVEL and the children; default process.env. */
  env?: NodeJS.ProcessEnv
  /** A pino logger to use instead of building one from LOG_LEVEL. */
  logger?: FastifyBaseLogger
  /** Wait for an upstream's response headers, then 504; default NAVIGATOR_UPSTREAM_TIMEOUT, else DEFAULT_UPSTREAM_TIMEOUT_MS. */
  upstreamTimeoutMs?: number
  /** false: every request runs through Fastify, never the raw path (same answers, slower; see PipelineOptions). */
  rawPath?: boolean
  /** The TurboCable hub's ping period; default NAVIGATOR_CABLE_PING_INTERVAL, else CABLE_PING_INTERVAL_MS (30 s). */
  cablePingIntervalMs?: number
}

export interface NavigatorServer {
  /** The Fastify instance currently answering (a reload replaces it). */
  readonly fastify: FastifyInstance
  readonly supervisor: Supervisor
  /** The one http server; it outlives reloads. */
  readonly server: Server
  readonly config: NavigatorConfig
  /** The current configuration's pipeline (its `steps` are the request path, in order). */
  readonly pipeline: Pipeline
  readonly log: FastifyBaseLogger
  /** Starts the supervisor and listens on server.listen; resolves with the address, e.g. http://127.0.0.1:3000. */
  listen (): Promise<string>
  /** Swaps in a new config without dropping a request or a WebSocket. */
  reload (config: NavigatorConfig): Promise<void>
  /**
   * Reads the config file when its turn among reloads comes, then swaps it in as `reload` does: of reloads asked for
   * one after another, the last one's file is the one in effect. Rejects with `ConfigError` (nothing changed) when
   * the file has problems.
   */
  reloadFile (file: string): Promise<void>
  /** Stops accepting, drains requests up to shutdown_timeout, closes WebSockets with 1001, stops the children. */
  close (): Promise<void>
}

/**
 * A duration in ms above zero: the option when given, else the environment variable's Go duration, else the default;
 * anything else throws `Invalid` with what was given.
 */
function positiveDuration (option: number | undefined, text: string | undefined, fallback: number, Invalid: new (given: string) => Error): number {
  if (option !== undefined) {
    if (!Number.isFinite(option) || option <= 0) throw new Invalid(String(option))
    return option
  }
  const given = nonEmpty(text)
  if (given === null) return fallback
  let ms: number
  try {
    ms = parseDuration(given)
  } catch {
    throw new Invalid(JSON.stringify(given))
  }
  if (ms <= 0) throw new Invalid(JSON.stringify(given))
  return ms
}

/** The upstream response timeout: the `upstreamTimeoutMs` option or NAVIGATOR_UPSTREAM_TIMEOUT (a Go duration). */
function upstreamTimeout (option: number | undefined, env: NodeJS.ProcessEnv): number {
  return positiveDuration(option, env.NAVIGATOR_UPSTREAM_TIMEOUT, DEFAULT_UPSTREAM_TIMEOUT_MS, InvalidUpstreamTimeoutError)
}

/**
 * The hub's ping period (a client silent for twice it is disconnected). There is no config key for it (the Go
 * Navigator has none); NAVIGATOR_CABLE_PING_INTERVAL (a Go duration) or the `cablePingIntervalMs` option changes it.
 */
function cablePingInterval (option: number | undefined, env: NodeJS.ProcessEnv): number {
  return positiveDuration(option, env.NAVIGATOR_CABLE_PING_INTERVAL, CABLE_PING_INTERVAL_MS, InvalidCablePingIntervalError)
}

/** What every generation shares: one supervisor, one proxy, one WebSocket relay, across reloads. */
interface Shared extends Omit<StepOptions, 'config' | 'maintenance' | 'cannotStart'> {
  supervisor: Supervisor
  rawPath: boolean
}

/** A configuration's Fastify instance, with the plugins in place and the steps built; not yet answering. */
async function prepare (app: FastifyInstance, config: NavigatorConfig, shared: Shared): Promise<Generation> {
  const steps = createSteps({ ...shared, config, maintenance: maintenanceFor(config.server, shared.log), cannotStart: cannotStartFor(config.server) })
  const pipeline = createPipeline(steps, { rawPath: shared.rawPath, metrics: shared.metrics !== null })
  await app.register(processSupervisor, { supervisor: shared.supervisor })
  await app.register(pipelinePlugin, { pipeline, publicDir: config.server.publicDir })
  await app.ready()
  return { app, pipeline, config, inFlight: 0, retired: false }
}

/** How server hooks run: with Navigator's environment, in the config file's folder, `reload_config` through `reload`. */
function serverHookRun (moment: keyof ServerHooks, config: NavigatorConfig, env: NodeJS.ProcessEnv, log: FastifyBaseLogger, reload: (file: string) => Promise<void>): HookRun {
  return {
    name: `server.${moment}`,
    env,
    cwd: config.dir,
    logger: log,
    lookup: (name) => env[name],
    reload: { currentFile: () => config.file, reload }
  }
}

async function closeServer (server: Server | null): Promise<void> {
  if (server === null) return
  server.closeAllConnections()
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
}

export async function buildServer (config: NavigatorConfig, options: BuildServerOptions = {}): Promise<NavigatorServer> {
  const env = options.env ?? process.env
  const identity = identityFrom(env)
  const headersTimeoutMs = upstreamTimeout(options.upstreamTimeoutMs, env)
  const listenHost = config.server.listen.host
  const port = await concretePort(listenHost, config.server.listen.port)
  // server.trust_proxy (absent: trusted on Fly only); read at start, as the proxy and the WebSocket relay outlive reloads.
  const trustForwarded = trustsForwarded(config, identity)
  const first = Fastify({ ...fastifyLogging(options.logger === undefined ? { logger: loggerOptions(env, config.logging) } : { loggerInstance: options.logger }), trustProxy: trustForwarded })
  const log = first.log
  // `reload_config` of hooks and CGI scripts. Used once the server runs, when `generations` exists.
  const reloadConfig = { currentFile: () => generations.current.config.file, reload: async (file: string) => { await reloadFrom(file) } }
  const supervisor = new Supervisor({ applications: config.applications, managedProcesses: config.managedProcesses, logger: log, env, reload: reloadConfig })
  const proxy: UpstreamProxy = createUpstreamProxy({ headersTimeoutMs, collectEveryBodyBytes: UPLOAD_BYTES_PER_MINOR_GC, trustForwarded, compress: true })
  const webSockets = new WebSocketRelay({ log, trustForwarded })
  // Hooks read the current configuration when they run: a reload may have changed them.
  const serverHooks = async (moment: keyof ServerHooks): Promise<void> => {
    const current = generations.current.config
    await runHooks(current.serverHooks[moment], serverHookRun(moment, current, env, log, reloadFrom))
  }
  const machineIdle = machineIdleFor(config, identity, log, async () => { await serverHooks('idle') })
  machineIdle?.on('resumed', () => { void serverHooks('resume') })
  // Read at start only: counters must outlive reloads, and a listener of their own outlives them too.
  const metrics = config.server.metrics === null ? null : new NavigatorMetrics(config.server.metrics)
  // The same for the status page: its counts and recent fallbacks outlive reloads.
  const status = config.server.status === null ? null : new NavigatorStatus(config.server.status, { identity, version: navigatorVersion(), metrics })
  // The TurboCable hub: one for every configuration, so that a reload keeps its WebSockets.
  const cable = new CableHub({ log, machineIdle, pingIntervalMs: cablePingInterval(options.cablePingIntervalMs, env) })
  const shared: Shared = { trustForwarded, supervisor, processes: processManager(supervisor, machineIdle), proxy, webSockets, identity, port, log, metrics, status, env, reloadConfig, cable, rawPath: options.rawPath !== false }
  const generations = new Generations(await prepare(first, config, shared), log, machineIdle, logsRequests(log), metrics)
  const server = createHttpServer(generations, log)
  metrics?.watch({ supervisor, webSockets, cable, machineIdle, applications: () => generations.current.config.applications, managed: () => generations.current.config.managedProcesses, inFlight: () => generations.inFlight })
  status?.watch({ supervisor, webSockets, cable, config: () => generations.current.config, inFlight: () => generations.inFlight })
  let metricsServer: Server | null = null

  async function listen (): Promise<string> {
    // A failed server.start hook stops the start (HookFailedError, with its output) before anything was started.
    await runHooksOrFail(config.serverHooks.start, serverHookRun('start', config, env, log, reloadFrom))
    await supervisor.start()
    try {
      if (metrics !== null) metricsServer = await listenForMetrics(metrics, log)
      await listenOn(server, listenHost, port)
    } catch (err) {
      // Nothing may outlive a failed start: the children started above are stopped.
      metricsServer?.close()
      await supervisor.stop()
      throw err
    }
    machineIdle?.start()
    const address = connectableAddress(server)
    status?.listening(address)
    log.info({ address }, 'listening')
    void serverHooks('ready')
    return address
  }

  // hooks.server.stop: the configuration of the moment, no reload_config (Navigator is stopping), done by `deadline`.
  const stopHooks = async (deadline: number): Promise<void> => {
    const current = generations.current.config
    await runHooks(current.serverHooks.stop, { ...serverHookRun('stop', current, env, log, reloadFrom), reload: undefined, deadline })
  }
  const parts = { server, generations, webSockets, cable, proxy, supervisor, machineIdle, log, stopHooks }
  const newApp = (): FastifyInstance => Fastify({ ...fastifyLogging({ loggerInstance: log }), trustProxy: trustForwarded })
  const prepareNext = async (app: FastifyInstance, next: NavigatorConfig): Promise<Generation> => {
    if (JSON.stringify(next.server.metrics) !== JSON.stringify(config.server.metrics)) log.warn('server.metrics changed: a restart is needed; the metrics keep their settings from the start')
    if (JSON.stringify(next.server.status) !== JSON.stringify(config.server.status)) log.warn('server.status changed: a restart is needed; the status page keeps its settings from the start')
    if (trustsForwarded(next, identity) !== trustForwarded) log.warn('server.trust_proxy changed: a restart is needed; X-Forwarded-* are trusted as at the start')
    return await prepare(app, next, shared)
  }

  // One reload at a time, whoever asks (a hook's or a CGI script's reload_config, the navigator's own reload):
  // each reads its file when its turn comes, so the last one asked for is the one in effect.
  let reloads: Promise<void> = Promise.resolve()
  const inTurn = async (reloading: () => Promise<void>): Promise<void> => {
    const turn = reloads.then(reloading)
    reloads = turn.catch(() => {})
    await turn
  }
  const reloadFrom = async (file: string): Promise<void> => {
    await inTurn(async () => { await applyReload(await loadConfig(file, { launchPaths: true })) })
  }
  const applyReload = async (next: NavigatorConfig): Promise<void> => {
    await reload({ generations, supervisor, log, newApp, prepare: prepareNext }, next)
    if (generations.closing) return
    // In the background, as a replaced tenant's drain: a changed managed process restarts, an unchanged one runs on.
    supervisor.updateManagedProcesses(next.managedProcesses).catch((err: Error) => { log.error({ err }, 'applying the reloaded managed_processes failed') })
  }
  const navigator: NavigatorServer = {
    get fastify () { return generations.current.app },
    get config () { return generations.current.config },
    get pipeline () { return generations.current.pipeline },
    supervisor,
    server,
    log,
    listen,
    reload: async (next) => { await inTurn(async () => { await applyReload(next) }) },
    reloadFile: reloadFrom,
    close: async () => {
      await shutdown(parts)
      await closeServer(metricsServer)
    }
  }
  return navigator
}
