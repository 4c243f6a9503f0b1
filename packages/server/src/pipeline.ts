import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { NavigatorConfig, ReplayTarget, RewriteRule } from '@navigator/config'
import { createReplayRuleMatcher, flyReplayRules, hasBody } from '@navigator/fly-replay'
import type { UpstreamProxy } from '@navigator/fly-replay'
import { optionsFromConfig, stickySessions } from '@navigator/sticky-sessions'
import type { MaintenanceResponder } from './maintenance.js'
import { createStaticFileFinder } from './static-files.js'
import type { StaticFileFinder } from './static-files.js'
import { createUpstreamRouter } from './upstreams.js'
import type { Upstream } from './upstreams.js'
import { isUpgrade } from './websocket.js'
import type { WebSocketRelay } from './websocket.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The path (without query string) after `routes.rewrites`; what steps 3, 6 and 7 route on. */
    forwardedPath: string | null
  }
  interface FastifyInstance {
    /** The pipeline's fast path (see createFastPath); the server offers every request to it before Fastify. */
    navigatorFastPath: FastPath
  }
}

/** Answers a request without Fastify and returns true, or returns false having done nothing. */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean

/** What the pipeline needs from the supervisor (the `Supervisor` of @navigator/supervisor). */
export interface ProcessManager {
  ensureTenant (name: string): Promise<{ port: number }>
  /** The port of a tenant that is ready now, else null (then ensureTenant starts or waits for it); optional. */
  readyPort? (name: string): number | null
  standaloneStatus (name: string): { state: string }
  trackRequest (name: string): () => void
  trackWebSocket (name: string): () => void
}

export interface Identity {
  machineId: string | null
  appName: string | null
  region: string | null
}

export interface PipelineOptions {
  config: NavigatorConfig
  processes: ProcessManager
  proxy: UpstreamProxy
  maintenance: MaintenanceResponder
  webSockets: WebSocketRelay
  identity: Identity
  /** The port this Navigator listens on; peers are reached on it for the direct proxy. */
  port: number
}

const UPSTREAM_HOST = '127.0.0.1'

/**
 * The request pipeline of SPEC section 3, in order. Fastify runs onRequest
 * hooks in registration order and the route handler last, so the order of the
 * statements below is the order a request goes through:
 *
 *   1. health check          ┐
 *   2. rewrites              ├ one early onRequest hook (answersLocally)
 *   3. static files          ┘
 *   4. routes.fly.replay     the flyReplayRules plugin's onRequest hook (original path)
 *   5. sticky sessions       the stickySessions plugin's onRequest hook (original path)
 *   6. standalone servers    ┐
 *   7. tenants               ├ the catch-all route (toUpstream), on the forwarded path
 *   8. 404                   ┘
 */
async function registerPipeline (fastify: FastifyInstance, options: PipelineOptions): Promise<void> {
  const { config, identity, proxy, maintenance, port } = options

  fastify.decorateRequest('forwardedPath', null)
  await fastify.register(fastifyStatic, {
    root: config.server.publicDir,
    serve: false,
    preCompressed: true,
    index: false,
    list: false,
    suppressWarning: true
  })

  const rewrite = createRewriter(config.routes.rewrites)
  const findStaticFile = createStaticFileFinder(config.server.publicDir)

  // Steps 1 to 3.
  fastify.addHook('onRequest', answersLocally(config, rewrite, findStaticFile))

  // Step 4.
  const peers = config.routes.fly.stickySessions.peers
  await fastify.register(flyReplayRules, {
    rules: config.routes.fly.replay,
    machineId: identity.machineId ?? undefined,
    appName: identity.appName ?? undefined,
    region: identity.region ?? undefined,
    proxy,
    port,
    maintenance,
    // Outside Fly (tests, other clusters) a Machine's address comes from the peers map.
    resolveAddress: Object.keys(peers).length === 0 ? undefined : peerAddress(peers)
  })

  // Step 5.
  const sticky = config.routes.fly.stickySessions
  if (sticky.enabled) {
    await fastify.register(stickySessions, {
      ...optionsFromConfig(sticky),
      machineId: identity.machineId ?? undefined,
      appName: identity.appName ?? undefined,
      region: identity.region ?? undefined,
      port,
      proxy,
      maintenance
    })
  }

  // Steps 6 to 8. Bodies are never parsed: the proxy streams them upstream, so
  // Fastify's body limit and 415 answers never apply.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', passBodyThrough)
  const upstreams = createUpstreams(options)
  fastify.all('/*', toUpstream(options, upstreams))
  fastify.setNotFoundHandler(notFound)

  fastify.decorate('navigatorFastPath', createFastPath(fastify, options, rewrite, findStaticFile, upstreams))
}

/** The pipeline as a Fastify plugin (not encapsulated: it is the whole application). */
export const pipeline = fp(registerPipeline, { fastify: '5.x', name: '@navigator/server-pipeline' })

function peerAddress (peers: Record<string, string>): (target: ReplayTarget) => string | null {
  return (target) => target.kind === 'machine' ? peers[target.machine] ?? null : null
}

function passBodyThrough (request: FastifyRequest, payload: unknown, done: (err: Error | null, body?: unknown) => void): void {
  done(null)
}

function notFound (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(404).type('text/plain; charset=utf-8').send('Not Found\n')
}

/** Whether `url` (path and query) is the health check path `healthCheck` (null: none), as step 1 matches it. */
export function isHealthCheckUrl (url: string | undefined, healthCheck: string | null): boolean {
  if (healthCheck === null || url === undefined || !url.startsWith(healthCheck)) return false
  return url.length === healthCheck.length || url.charCodeAt(healthCheck.length) === 63 /* ? */
}

function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/** What an upstream is asked for: the forwarded path with the request's query string. */
function upstreamPath (url: string, forwardedPath: string): string {
  const query = url.indexOf('?')
  return query === -1 ? forwardedPath : forwardedPath + url.slice(query)
}

/** Step 2: the forwarded path of a request path, by the first matching rewrite rule (or the path itself). */
function createRewriter (rewrites: readonly RewriteRule[]): (path: string) => string {
  return function rewrite (path) {
    for (const rule of rewrites) {
      if (rule.pattern.test(path)) return path.replace(rule.pattern, rule.rewrite)
    }
    return path
  }
}

/** Steps 1 to 3: the answers Navigator gives by itself, and the forwarded path. */
function answersLocally (config: NavigatorConfig, rewrite: (path: string) => string, findStaticFile: StaticFileFinder) {
  const healthCheck = config.server.healthCheck
  const publicDir = config.server.publicDir

  return function onRequest (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
    const path = pathOf(request.url)

    // 1. Health check.
    if (healthCheck !== null && path === healthCheck) {
      reply.code(200).type('text/plain; charset=utf-8').send('OK\n')
      return
    }

    // 2. Rewrites.
    const forwardedPath = rewrite(path)
    request.forwardedPath = forwardedPath

    // 3. Static files, for GET and HEAD only; an upgrade is never a file.
    const method = request.raw.method
    if ((method !== 'GET' && method !== 'HEAD') || isUpgrade(request.raw)) {
      done()
      return
    }
    const found = findStaticFile(forwardedPath)
    if (found === null) {
      done()
      return
    }
    found.then((file) => {
      if (file === null) {
        done()
        return
      }
      // Not calling done(): the file is the answer and the pipeline stops here.
      reply.sendFile(file, publicDir)
    }, done)
  }
}

/** Steps 6 and 7 as lookups shared by the route and the fast path. */
interface Upstreams {
  /** The standalone server or tenant that owns a forwarded path, or null. */
  find: (forwardedPath: string) => Upstream | null
  /** The port of a tenant that is ready now, else null. */
  readyPort: (name: string) => number | null
  /** `http://127.0.0.1:<port>`, built once per port. */
  originOf: (port: number) => string
}

function createUpstreams (options: PipelineOptions): Upstreams {
  const processes = options.processes
  const origins = new Map<number, string>()
  return {
    find: createUpstreamRouter(options.config.applications),
    readyPort: processes.readyPort === undefined ? () => null : processes.readyPort.bind(processes),
    originOf (port) {
      let origin = origins.get(port)
      if (origin === undefined) {
        origin = `http://${UPSTREAM_HOST}:${port}`
        origins.set(port, origin)
      }
      return origin
    }
  }
}

/**
 * The hot path without Fastify: a GET or HEAD without a body, for a ready tenant, that steps 1 to 5 let through
 * untouched (not the health check, no static file, no replay rule, a sticky decision of serve-here) is proxied
 * straight from Node's request, and a sticky replay is answered, in both cases with the same functions, headers
 * and log lines as the Fastify path. Anything else (a health check, a static file, a rule, a rejected cookie, a
 * body, an upgrade, a "%" in the URL, a tenant that must start, a standalone server, a 404) returns false having
 * done nothing, and Fastify's pipeline takes the request from the start; so does every request at log level debug
 * or trace. Fastify's routing, request and reply objects, per-request child logger and three hooks cost about a
 * sixth of the CPU of a proxied request and a quarter of a replay answer's (bench/README.md).
 */
function createFastPath (fastify: FastifyInstance, options: PipelineOptions, rewrite: (path: string) => string, findStaticFile: StaticFileFinder, upstreams: Upstreams): FastPath {
  const { config, processes, proxy } = options
  const healthCheck = config.server.healthCheck
  const ruleMatches = createReplayRuleMatcher(config.routes.fly.replay)
  const sticky = fastify.hasDecorator('stickySessionsEngine') ? fastify.stickySessionsEngine : null
  const log = fastify.log
  // At debug and trace every request goes through Fastify, for its "request completed" and debug lines.
  if (log.level === 'debug' || log.level === 'trace') return () => false
  const { find, readyPort, originOf } = upstreams

  return function fastPath (req, res) {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') return false
    const url = req.url as string
    // A URL Fastify reads differently (an escape it decodes or refuses, an absolute form) takes its path.
    if (url.charCodeAt(0) !== 47 /* / */ || url.includes('%')) return false
    const headers = req.headers
    if (hasBody(headers) || headers.upgrade !== undefined) return false
    const path = pathOf(url)
    if (path === healthCheck) return false
    const forwardedPath = rewrite(path)
    if (findStaticFile(forwardedPath) !== null) return false
    if (ruleMatches(method, url)) return false
    let servedHere: Readonly<Record<string, string>> | undefined
    if (sticky !== null) {
      const decision = sticky.decide(req)
      if (decision !== null) {
        if (decision.kind === 'replay') {
          sticky.answerReplay(res, decision.machine, log)
          return true
        }
        if (decision.kind !== 'own' && decision.kind !== 'new') return false
        servedHere = sticky.servedHereHeaders
      }
    }
    const upstream = find(forwardedPath)
    if (upstream === null || upstream.kind !== 'tenant') return false
    const name = upstream.tenant.name
    const port = readyPort(name)
    if (port === null) return false
    res.on('close', processes.trackRequest(name))
    proxy.relayRaw(req, res, { origin: originOf(port), path: upstreamPath(url, forwardedPath) }, log, servedHere)
    return true
  }
}

/** Steps 6 to 8: proxy to the standalone server or tenant that owns the forwarded path, else 404. */
function toUpstream (options: PipelineOptions, upstreams: Upstreams) {
  const { processes, proxy, maintenance, webSockets } = options
  const { find: findUpstream, readyPort, originOf } = upstreams

  /** The request is counted for its upstream until its response closes; the proxy answers it. */
  function relay (request: FastifyRequest, reply: FastifyReply, name: string, port: number, path: string, whenUnreachable: (() => unknown) | undefined): void {
    reply.raw.on('close', processes.trackRequest(name))
    proxy.relay(request, reply, { origin: originOf(port), path },
      whenUnreachable === undefined ? undefined : { onUnreachable: whenUnreachable })
  }

  /** A tenant that is not ready (stopped, starting): wait for it, then proxy; the maintenance page if it fails. */
  async function whenTenantReady (request: FastifyRequest, reply: FastifyReply, name: string, path: string): Promise<FastifyReply> {
    let port: number
    try {
      port = (await processes.ensureTenant(name)).port
    } catch (err) {
      request.log.warn({ tenant: name, err: (err as Error).message }, 'tenant unavailable')
      return maintenance(request, reply)
    }
    if (isUpgrade(request.raw)) return await relayWebSocket(request, reply, name, port, path, undefined)
    // A client that left while the tenant started is neither proxied nor counted (its 'close' has been emitted).
    if (reply.raw.destroyed) return reply
    reply.raw.on('close', processes.trackRequest(name))
    // Awaited: the promise settles once the reply is hijacked or answered, and `reply` then waits for its end.
    await proxy.forward(request, reply, { origin: originOf(port), path })
    return reply
  }

  async function relayWebSocket (request: FastifyRequest, reply: FastifyReply, name: string, port: number, path: string, whenUnreachable: (() => unknown) | undefined): Promise<FastifyReply> {
    await webSockets.relay(request, reply, {
      host: UPSTREAM_HOST,
      port,
      path,
      release: processes.trackWebSocket(name),
      onUnreachable: whenUnreachable
    })
    return reply
  }

  // Synchronous on the hot path (a ready tenant, a running standalone server): the proxy answers, the handler
  // returns nothing, and no promise is made. Anything that must wait returns a promise of the reply.
  return function proxyToUpstream (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> | undefined {
    const url = request.url
    const forwardedPath = request.forwardedPath ?? pathOf(url)
    const upstream: Upstream | null = findUpstream(forwardedPath)
    if (upstream === null) {
      notFound(request, reply)
      return undefined
    }
    const path = upstreamPath(url, forwardedPath)

    if (upstream.kind === 'standalone') {
      const name = upstream.server.name
      const port = upstream.server.port
      // A standalone server that is down (crashed, backing off) answers with
      // the maintenance page at once instead of a connection error.
      if (processes.standaloneStatus(name).state !== 'running') {
        maintenance(request, reply)
        return undefined
      }
      const whenUnreachable = (): unknown => maintenance(request, reply)
      if (isUpgrade(request.raw)) return relayWebSocket(request, reply, name, port, path, whenUnreachable)
      relay(request, reply, name, port, path, whenUnreachable)
      return undefined
    }

    const name = upstream.tenant.name
    const port = readyPort(name)
    if (port === null || isUpgrade(request.raw)) return whenTenantReady(request, reply, name, path)
    relay(request, reply, name, port, path, undefined)
    return undefined
  }
}
