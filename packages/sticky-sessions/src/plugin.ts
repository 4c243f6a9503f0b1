import { stringifySetCookie } from 'cookie'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { buildReplayHeader } from '@navigator/fly-replay'
import {
  addResponseHeaders,
  ANSWERED,
  answer,
  createUpstreamProxy,
  NEXT,
  removeResponseHeader,
  stepHook
} from '@navigator/proxy'
import type { RequestContext, Step, StepResult, UpstreamProxy } from '@navigator/proxy'
import { COOKIE_REJECTIONS, createCookieCodec, createCookieReader, describeRejectedValue, type CookieRejection } from './cookie.js'
import { createDecider, PROXIED_HEADER } from './decide.js'
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

declare module 'fastify' {
  interface FastifyRequest {
    /** The sticky-session decision; null on paths that are not sticky or when the feature is off. */
    stickySession: StickySession | null
  }
}

export const REPLAY_RESPONSE_BODY = 'Replaying to the Machine that holds this session\n'
const REPLAY_CONTENT_TYPE = 'text/plain; charset=utf-8'
const REPLAY_LOG_LINE = 'Routing to machine via Fly-Replay'
/** Rejected cookies are logged at most once per interval for each reason. */
export const REJECTION_LOG_INTERVAL_MS = 1_000

/** The sticky-session step and what must be released with it. */
export interface StickySessions {
  /** Decides on the request's cookie and applies the decision; requests off the sticky paths go on untouched. */
  readonly step: Step
  /** Stops what discovery runs in the background and closes the proxy made when none was given. */
  close (): Promise<void>
}

function createDiscovery (options: ResolvedOptions, log: FastifyBaseLogger): MachineDiscovery & { close?: () => void } {
  const discovery = options.discovery
  if (typeof discovery === 'object') return discovery
  if (discovery === 'static') return createStaticDiscovery([...options.peers.keys(), options.machineId as string])
  if (discovery === 'dns') return createDnsDiscovery({ appName: options.appName as string, log })
  return noDiscovery
}

/**
 * Sticky sessions as a pipeline step, for the plugin's hook and for a server that runs its own list of steps; null
 * when the feature is off (disabled, or no Machine ID: said once, in `log`).
 */
export function createStickySessions (rawOptions: StickySessionsOptions, log: FastifyBaseLogger): StickySessions | null {
  const options = resolveOptions(rawOptions)
  if (!options.enabled) return null
  const machineId = options.machineId
  if (machineId === null) {
    log.info('Sticky sessions are off: no Machine ID (set FLY_MACHINE_ID or the machineId option)')
    return null
  }
  const matchPath = compileStickyPaths(options.paths)
  const codec = createCookieCodec(options.secrets)
  const discovery = createDiscovery(options, log)
  const ownsDiscovery = typeof options.discovery !== 'object'
  const decide = createDecider({ machineId, codec, discovery, replayState: STICKY_REPLAY_STATE })
  const readCookie = createCookieReader(options.cookieName)
  // This Machine's Set-Cookie never changes, so it is serialised once, and shared by every answer as it is.
  const servedHereHeaders = Object.freeze({
    'set-cookie': stringifySetCookie({
      name: options.cookieName,
      value: codec.encode(machineId),
      path: options.cookiePath,
      maxAge: options.cookieMaxAgeSeconds,
      httpOnly: options.cookieHttpOnly,
      secure: options.cookieSecure,
      sameSite: options.cookieSameSite.toLowerCase() as 'lax'
    })
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
  const ownProxy: UpstreamProxy | null = options.proxy === null ? createUpstreamProxy() : null
  const proxy = options.proxy ?? ownProxy as UpstreamProxy
  const proxiedBy = Object.freeze({ [PROXIED_HEADER]: machineId })
  const ownMachineLogFields = Object.freeze({ machine: machineId })
  const servedHere: StickySession = Object.freeze({ machine: machineId, action: 'serve' })
  const reassigned: StickySession = Object.freeze({ machine: machineId, action: 'fallback' })
  const lastWarned = new Map<CookieRejection, number>(COOKIE_REJECTIONS.map((reason) => [reason, 0]))

  function warnRejected (ctx: RequestContext, reason: CookieRejection, value: string): void {
    const now = Date.now()
    if (now - (lastWarned.get(reason) as number) < REJECTION_LOG_INTERVAL_MS) return
    lastWarned.set(reason, now)
    ctx.log.warn({ reason, value: describeRejectedValue(value) }, 'Sticky session cookie rejected; assigning this Machine')
  }

  function peerOrigin (target: string): string | null {
    const peer = peers.get(target)
    if (peer !== undefined) return peer
    return appName === null ? null : `http://${target}.vm.${appName}.internal:${port}`
  }

  function serveHere (ctx: RequestContext, session: StickySession): StepResult {
    record(ctx, session)
    addResponseHeaders(ctx, servedHereHeaders)
    return NEXT
  }

  function replay (ctx: RequestContext, target: string): StepResult {
    record(ctx, { machine: target, action: 'replay' })
    ctx.log.info({ machine: target }, REPLAY_LOG_LINE)
    removeResponseHeader(ctx, 'set-cookie')
    answer(ctx, replayStatus, { 'fly-replay': `instance=${target}${replaySuffix}`, 'content-type': REPLAY_CONTENT_TYPE }, REPLAY_RESPONSE_BODY)
    return ANSWERED
  }

  /** The cookie's Machine cannot be reached: maintenance (cookie kept) or serve here (cookie moved to us). */
  function fallback (ctx: RequestContext, target: string): StepResult {
    if (routeToAvailable) return serveHere(ctx, reassigned)
    record(ctx, { machine: target, action: 'fallback' })
    ctx.log.warn({ machine: target }, 'machine unavailable')
    maintenance(ctx)
    return ANSWERED
  }

  /** Streams the request to the cookie's Machine; the fallback answers when it cannot be reached before any body byte left. */
  function proxyTo (ctx: RequestContext, target: string): StepResult {
    const origin = peerOrigin(target)
    if (origin === null) return fallback(ctx, target)
    record(ctx, { machine: target, action: 'proxy' })
    let outcome: StepResult = ANSWERED
    return proxy.forward(ctx, { origin }, {
      headers: proxiedBy,
      onUnreachable: () => { outcome = fallback(ctx, target) }
    }).then(() => outcome)
  }

  const step: Step = {
    name: 'sticky-sessions',
    run (ctx) {
      const req = ctx.req
      if (!matchPath(stickyMatchPath(req.url as string))) return NEXT
      const header = req.headers.cookie
      const decision = decide(header === undefined ? undefined : readCookie(header), req.headers)
      switch (decision.kind) {
        case 'new':
          return serveHere(ctx, servedHere)
        case 'own':
          ctx.log.debug(ownMachineLogFields, 'Sticky session cookie found')
          return serveHere(ctx, servedHere)
        case 'rejected':
          warnRejected(ctx, decision.rejection as CookieRejection, readCookie(header as string) as string)
          return serveHere(ctx, servedHere)
      }
      ctx.log.debug({ machine: decision.machine }, 'Sticky session cookie found')
      switch (decision.kind) {
        case 'replay': return replay(ctx, decision.machine)
        case 'proxy': return proxyTo(ctx, decision.machine)
        case 'unavailable': return fallback(ctx, decision.machine)
        default:
          // 'routed': another part of Navigator replayed the request here; that routing stands.
          record(ctx, { machine: decision.machine, action: 'serve' })
          return NEXT
      }
    }
  }

  async function close (): Promise<void> {
    if (ownsDiscovery) discovery.close?.()
    await ownProxy?.close()
  }

  return { step, close }
}

/** The decision, on `request.stickySession` when the plugin decorated the request (an app's own routes read it). */
function record (ctx: RequestContext, session: StickySession): void {
  const request = ctx.request as { stickySession?: StickySession | null } | null
  if (request !== null && request.stickySession !== undefined) request.stickySession = session
}

async function stickySessionsPlugin (fastify: FastifyInstance, options: StickySessionsOptions): Promise<void> {
  fastify.decorateRequest('stickySession', null)
  const sticky = createStickySessions(options, fastify.log)
  if (sticky === null) return
  fastify.addHook('onRequest', stepHook(sticky.step))
  fastify.addHook('onClose', sticky.close)
}

export const stickySessions = fp(stickySessionsPlugin, { fastify: '5.x', name: '@navigator/sticky-sessions' })
