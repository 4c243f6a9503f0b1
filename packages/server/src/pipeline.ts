import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { NavigatorConfig, ReplayTarget } from '@navigator/config'
import { flyReplayRules } from '@navigator/fly-replay'
import type { UpstreamProxy } from '@navigator/fly-replay'
import { optionsFromConfig, stickySessions } from '@navigator/sticky-sessions'
import type { MaintenanceResponder } from './maintenance.js'
import { createStaticFileFinder } from './static-files.js'
import { createUpstreamRouter } from './upstreams.js'
import type { Upstream } from './upstreams.js'
import { isUpgrade } from './websocket.js'
import type { WebSocketRelay } from './websocket.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The path (without query string) after `routes.rewrites`; what steps 3, 6 and 7 route on. */
    forwardedPath: string | null
  }
}

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

  // Steps 1 to 3.
  fastify.addHook('onRequest', answersLocally(config))

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
  fastify.all('/*', toUpstream(options))
  fastify.setNotFoundHandler(notFound)
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

/** Steps 1 to 3: the answers Navigator gives by itself, and the forwarded path. */
function answersLocally (config: NavigatorConfig) {
  const healthCheck = config.server.healthCheck
  const rewrites = config.routes.rewrites
  const publicDir = config.server.publicDir
  const findStaticFile = createStaticFileFinder(publicDir)

  return function onRequest (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
    const path = pathOf(request.url)

    // 1. Health check.
    if (healthCheck !== null && path === healthCheck) {
      reply.code(200).type('text/plain; charset=utf-8').send('OK\n')
      return
    }

    // 2. Rewrites: the first matching rule computes the forwarded path.
    let forwardedPath = path
    for (const rule of rewrites) {
      if (rule.pattern.test(path)) {
        forwardedPath = path.replace(rule.pattern, rule.rewrite)
        break
      }
    }
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

/** Steps 6 to 8: proxy to the standalone server or tenant that owns the forwarded path, else 404. */
function toUpstream (options: PipelineOptions) {
  const { processes, proxy, maintenance, webSockets } = options
  const findUpstream = createUpstreamRouter(options.config.applications)
  const readyPort = processes.readyPort?.bind(processes)
  // Built once per port: the origin strings of local upstreams.
  const origins = new Map<number, string>()
  function originOf (port: number): string {
    let origin = origins.get(port)
    if (origin === undefined) {
      origin = `http://${UPSTREAM_HOST}:${port}`
      origins.set(port, origin)
    }
    return origin
  }

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
    const query = url.indexOf('?')
    const path = query === -1 ? forwardedPath : forwardedPath + url.slice(query)

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
    const port = readyPort === undefined ? null : readyPort(name)
    if (port === null || isUpgrade(request.raw)) return whenTenantReady(request, reply, name, path)
    relay(request, reply, name, port, path, undefined)
    return undefined
  }
}
