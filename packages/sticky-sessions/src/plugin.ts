import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { buildReplayHeader, createUpstreamProxy, type UpstreamProxy } from '@navigator/fly-replay'
import { COOKIE_REJECTIONS, createCookieCodec, createCookieReader, describeRejectedValue, type CookieRejection } from './cookie.js'
import { createDecider, PROXIED_HEADER, type Decision } from './decide.js'
import { createDnsDiscovery, createStaticDiscovery, noDiscovery, type MachineDiscovery } from './discovery.js'
import { defaultMaintenance } from './maintenance.js'
import { resolveOptions, STICKY_REPLAY_STATE, type ResolvedOptions, type StickySessionsOptions } from './options.js'
import { compileStickyPaths, stickyMatchPath } from './paths.js'

export type StickyAction = 'serve' | 'replay' | 'proxy' | 'fallback'

/** What the plugin decided for a request on a sticky path. */
export interface StickySession {
  /** The Machine the cookie names once the decision is applied. */
  machine: string
  action: StickyAction
}

/**
 * The plugin's decision and its two cheapest answers, for a server that answers some requests on Node's request and
 * response before Fastify routes them (Navigator's own fast path). The plugin's hook makes the same decision with
 * the same functions; whatever the caller does not answer itself it leaves to Fastify, and so to the hook.
 */
export interface StickyEngine {
  /** The decision for a request, or null when its path is not sticky. Pure: no log line, no header. */
  decide (req: IncomingMessage): Decision | null
  /** Response headers for a request served here (decision new or own): this Machine's Set-Cookie. */
  readonly servedHereHeaders: Readonly<Record<string, string>>
  /** Answers a replay decision in full (status, fly-replay, the tiny body; no Set-Cookie) and logs it at info. */
  answerReplay (res: ServerResponse, target: string, log: FastifyBaseLogger): void
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The sticky-session decision; null on paths that are not sticky or when the feature is off. */
    stickySession: StickySession | null
  }
  interface FastifyInstance {
    /** The registered plugin's engine; null when the feature is off (disabled, or no Machine ID). */
    stickySessionsEngine: StickyEngine | null
  }
}

export const REPLAY_RESPONSE_BODY = 'Replaying to the Machine that holds this session\n'
const REPLAY_CONTENT_TYPE = 'text/plain; charset=utf-8'
const REPLAY_CONTENT_LENGTH = String(Buffer.byteLength(REPLAY_RESPONSE_BODY))
const REPLAY_LOG_LINE = 'Routing to machine via Fly-Replay'
/** Rejected cookies are logged at most once per interval for each reason. */
export const REJECTION_LOG_INTERVAL_MS = 1_000

function createDiscovery (options: ResolvedOptions, fastify: FastifyInstance): MachineDiscovery {
  const discovery = options.discovery
  if (typeof discovery === 'object') return discovery
  if (discovery === 'static') return createStaticDiscovery([...options.peers.keys(), options.machineId as string])
  if (discovery === 'dns') {
    const dns = createDnsDiscovery({ appName: options.appName as string, log: fastify.log })
    fastify.addHook('onClose', async () => { dns.close() })
    return dns
  }
  return noDiscovery
}

async function stickySessionsPlugin (fastify: FastifyInstance, rawOptions: StickySessionsOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
  const matchPath = compileStickyPaths(options.paths)
  fastify.decorateRequest('stickySession', null)
  if (!options.enabled) {
    fastify.decorate('stickySessionsEngine', null)
    return
  }
  const machineId = options.machineId
  if (machineId === null) {
    fastify.decorate('stickySessionsEngine', null)
    fastify.log.info('Sticky sessions are off: no Machine ID (set FLY_MACHINE_ID or the machineId option)')
    return
  }
  // Registered without its parsing hook: the hot path reads only our cookie, and an app that wants
  // request.cookies registers @fastify/cookie itself first.
  if (!fastify.hasDecorator('serializeCookie')) await fastify.register(fastifyCookie, { hook: false })

  const codec = createCookieCodec(options.secrets)
  const decide = createDecider({
    machineId,
    codec,
    discovery: createDiscovery(options, fastify),
    replayState: STICKY_REPLAY_STATE
  })
  const readCookie = createCookieReader(options.cookieName)
  // This Machine's Set-Cookie never changes, so it is serialised once.
  const ownSetCookie = fastify.serializeCookie(options.cookieName, codec.encode(machineId), {
    path: options.cookiePath,
    maxAge: options.cookieMaxAgeSeconds,
    httpOnly: options.cookieHttpOnly,
    secure: options.cookieSecure,
    sameSite: options.cookieSameSite.toLowerCase() as 'lax'
  })
  // Everything after `instance=<id>` is the same for every target; the ID itself passed the codec's strict check.
  const ownInstance = `instance=${machineId}`
  const replaySuffix = options.replayCache
    ? ''
    : buildReplayHeader({
      instance: machineId,
      state: STICKY_REPLAY_STATE,
      timeoutMs: options.replayTimeoutMs,
      fallback: 'force_self'
    }).slice(ownInstance.length)
  const replayStatus = options.replayStatus
  const maintenance = options.maintenance ?? defaultMaintenance
  const routeToAvailable = options.fallbackMode === 'route_to_available'
  const peers = options.peers
  const appName = options.appName
  const port = options.port
  let proxy: UpstreamProxy
  if (options.proxy !== null) {
    proxy = options.proxy
  } else {
    const own = createUpstreamProxy()
    proxy = own
    fastify.addHook('onClose', async () => { await own.close() })
  }
  const proxiedBy = Object.freeze({ [PROXIED_HEADER]: machineId })
  const ownMachineLogFields = Object.freeze({ machine: machineId })
  const servedHere: StickySession = Object.freeze({ machine: machineId, action: 'serve' })
  const reassigned: StickySession = Object.freeze({ machine: machineId, action: 'fallback' })
  const lastWarned = new Map<CookieRejection, number>(COOKIE_REJECTIONS.map((reason) => [reason, 0]))

  function warnRejected (request: FastifyRequest, reason: CookieRejection, value: string): void {
    const now = Date.now()
    if (now - (lastWarned.get(reason) as number) < REJECTION_LOG_INTERVAL_MS) return
    lastWarned.set(reason, now)
    request.log.warn({ reason, value: describeRejectedValue(value) }, 'Sticky session cookie rejected; assigning this Machine')
  }

  function peerOrigin (target: string): string | null {
    const peer = peers.get(target)
    if (peer !== undefined) return peer
    return appName === null ? null : `http://${target}.vm.${appName}.internal:${port}`
  }

  function serveHere (request: FastifyRequest, reply: FastifyReply, session: StickySession): void {
    request.stickySession = session
    reply.header('set-cookie', ownSetCookie)
  }

  function replay (request: FastifyRequest, reply: FastifyReply, target: string): void {
    request.stickySession = { machine: target, action: 'replay' }
    request.log.info({ machine: target }, REPLAY_LOG_LINE)
    reply.removeHeader('set-cookie')
    reply.code(replayStatus)
      .header('fly-replay', `instance=${target}${replaySuffix}`)
      .type(REPLAY_CONTENT_TYPE)
      .send(REPLAY_RESPONSE_BODY)
  }

  const engine: StickyEngine = {
    decide (req) {
      if (!matchPath(stickyMatchPath(req.url as string))) return null
      const header = req.headers.cookie
      return decide(header === undefined ? undefined : readCookie(header), req.headers)
    },
    servedHereHeaders: Object.freeze({ 'set-cookie': ownSetCookie }),
    // The same answer as replay() gives through Fastify, written in one writeHead.
    answerReplay (res, target, log) {
      log.info({ machine: target }, REPLAY_LOG_LINE)
      res.writeHead(replayStatus, [
        'fly-replay', `instance=${target}${replaySuffix}`,
        'content-type', REPLAY_CONTENT_TYPE,
        'content-length', REPLAY_CONTENT_LENGTH
      ])
      res.end(REPLAY_RESPONSE_BODY)
    }
  }
  fastify.decorate('stickySessionsEngine', engine)

  // The hook is callback-style (the happy path allocates no promise). Once something answers the request here, the
  // hook must not call done(): that is how a callback hook replies early in Fastify. reply.sent cannot tell, since it
  // stays false while a streamed answer is still being written.

  /** The maintenance answer ends the request; an error before any header left goes to Fastify's error handler. */
  function answerMaintenance (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    Promise.resolve(maintenance(request, reply)).catch((err: Error) => { if (!reply.raw.headersSent) done(err) })
  }

  /** The cookie's Machine cannot be reached: maintenance (cookie kept) or serve here (cookie moved to us). */
  function fallback (request: FastifyRequest, reply: FastifyReply, target: string, done: HookHandlerDoneFunction): void {
    if (routeToAvailable) {
      serveHere(request, reply, reassigned)
      done()
      return
    }
    request.stickySession = { machine: target, action: 'fallback' }
    request.log.warn({ machine: target }, 'machine unavailable')
    answerMaintenance(request, reply, done)
  }

  /** Streams the request to the cookie's Machine; the proxy answers, or calls back before any body byte left. */
  function proxyTo (request: FastifyRequest, reply: FastifyReply, target: string, done: HookHandlerDoneFunction): void {
    const origin = peerOrigin(target)
    if (origin === null) {
      fallback(request, reply, target, done)
      return
    }
    request.stickySession = { machine: target, action: 'proxy' }
    proxy.forward(request, reply, { origin }, {
      headers: proxiedBy,
      onUnreachable: () => { fallback(request, reply, target, done) }
    }).catch((err: Error) => { if (!reply.raw.headersSent) done(err) })
  }

  fastify.addHook('onRequest', function stickySessions (request, reply, done) {
    const decision = engine.decide(request.raw)
    if (decision === null) {
      done()
      return
    }
    switch (decision.kind) {
      case 'new':
        serveHere(request, reply, servedHere)
        done()
        return
      case 'own':
        request.log.debug(ownMachineLogFields, 'Sticky session cookie found')
        serveHere(request, reply, servedHere)
        done()
        return
      case 'rejected':
        warnRejected(request, decision.rejection as CookieRejection, readCookie(request.headers.cookie as string) as string)
        serveHere(request, reply, servedHere)
        done()
        return
      case 'replay':
        request.log.debug({ machine: decision.machine }, 'Sticky session cookie found')
        replay(request, reply, decision.machine)
        return
      case 'proxy':
        request.log.debug({ machine: decision.machine }, 'Sticky session cookie found')
        proxyTo(request, reply, decision.machine, done)
        return
      case 'unavailable':
        request.log.debug({ machine: decision.machine }, 'Sticky session cookie found')
        fallback(request, reply, decision.machine, done)
        return
      case 'routed':
        request.log.debug({ machine: decision.machine }, 'Sticky session cookie found')
        request.stickySession = { machine: decision.machine, action: 'serve' }
        done()
    }
  })
}

export const stickySessions = fp(stickySessionsPlugin, { fastify: '5.x', name: '@navigator/sticky-sessions' })
