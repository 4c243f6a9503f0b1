import { stringifySetCookie } from 'cookie'
import type { FastifyBaseLogger } from 'fastify'
import { buildReplayHeader } from '@navigator/fly-replay'
import { addResponseHeaders, ANSWERED, answer, NEXT, removeResponseHeader } from '@navigator/proxy'
import type { MaintenanceResponder, RequestContext, Step, StepResult, UpstreamProxy } from '@navigator/proxy'
import { COOKIE_REJECTIONS, createCookieCodec, createCookieReader, describeRejectedValue, type CookieRejection } from './cookie.js'
import { createDecider, PROXIED_HEADER, type Decider } from './decide.js'
import type { MachineDiscovery } from './discovery.js'
import { defaultMaintenance } from './maintenance.js'
import { STICKY_REPLAY_STATE, type ResolvedOptions } from './options.js'
import { compileStickyPaths, stickyMatchPath } from './paths.js'

export type StickyAction = 'serve' | 'replay' | 'proxy' | 'fallback'

/** What the step decided for a request on a sticky path. */
export interface StickySession {
  /** The Machine the cookie names once the decision is applied. */
  machine: string
  action: StickyAction
}

export const REPLAY_RESPONSE_BODY = 'Replaying to the Machine that holds this session\n'
const REPLAY_BODY = Buffer.from(REPLAY_RESPONSE_BODY)
const REPLAY_CONTENT_TYPE = 'text/plain; charset=utf-8'
const REPLAY_LOG_LINE = 'Routing to machine via Fly-Replay'
const COOKIE_FOUND = 'Sticky session cookie found'
/** Rejected cookies are logged at most once per interval for each reason. */
export const REJECTION_LOG_INTERVAL_MS = 1_000

type DecoratedRequest = { stickySession?: StickySession | null } | null

/** The decision, on `request.stickySession` when the plugin decorated the request (an app's own routes read it). */
function record (ctx: RequestContext, session: StickySession): void {
  const request = ctx.request as DecoratedRequest
  if (request !== null && request.stickySession !== undefined) request.stickySession = session
}

/** `record` of a decision about another Machine: nothing is made when nobody reads it (the raw path). */
function recordFor (ctx: RequestContext, machine: string, action: StickyAction): void {
  const request = ctx.request as DecoratedRequest
  if (request !== null && request.stickySession !== undefined) request.stickySession = { machine, action }
}

/** Per-request debug lines cost an object each even when not written: they are made only at debug level. */
function debugging (log: FastifyBaseLogger): boolean {
  const level = log.level
  return level === 'debug' || level === 'trace'
}

/**
 * The sticky-session step: reads the cookie, decides (decide.ts), and applies the decision: serve here (and set the
 * cookie to this Machine), answer with fly-replay, proxy a body too large to replay to the cookie's Machine, or fall
 * back (maintenance page, or serve here) when that Machine is unavailable. Everything that is the same for every
 * request is computed once, here.
 */
export class StickyStep implements Step {
  readonly name = 'sticky-sessions'
  private readonly matchPath: (path: string) => boolean
  private readonly decide: Decider
  private readonly readCookie: (header: string) => string | undefined
  private readonly servedHereHeaders: Readonly<Record<string, string>>
  /** Everything after `instance=<id>` of our replays; the same for every target. */
  private readonly replaySuffix: string
  private readonly maintenance: MaintenanceResponder
  private readonly proxiedBy: Readonly<Record<string, string>>
  private readonly servedHere: StickySession
  private readonly reassigned: StickySession
  private readonly ownMachineLogFields: Readonly<{ machine: string }>
  private readonly lastWarned = new Map<CookieRejection, number>(COOKIE_REJECTIONS.map((reason) => [reason, 0]))

  constructor (private readonly options: ResolvedOptions, machineId: string, discovery: MachineDiscovery, private readonly proxy: UpstreamProxy) {
    this.matchPath = compileStickyPaths(options.paths)
    const codec = createCookieCodec(options.secrets)
    this.decide = createDecider({ machineId, codec, discovery, replayState: STICKY_REPLAY_STATE })
    this.readCookie = createCookieReader(options.cookieName)
    // This Machine's Set-Cookie never changes: serialised once, and shared by every answer as it is.
    this.servedHereHeaders = Object.freeze({
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
    // The ID itself passed the codec's strict check, as every target does before it is replayed to.
    this.replaySuffix = options.replayCache
      ? ''
      : buildReplayHeader({ instance: machineId, state: STICKY_REPLAY_STATE, timeoutMs: options.replayTimeoutMs, fallback: 'force_self' })
        .slice(`instance=${machineId}`.length)
    this.maintenance = options.maintenance ?? defaultMaintenance
    this.proxiedBy = Object.freeze({ [PROXIED_HEADER]: machineId })
    this.servedHere = Object.freeze({ machine: machineId, action: 'serve' })
    this.reassigned = Object.freeze({ machine: machineId, action: 'fallback' })
    this.ownMachineLogFields = Object.freeze({ machine: machineId })
  }

  run (ctx: RequestContext): StepResult {
    const req = ctx.req
    if (!this.matchPath(stickyMatchPath(req.url as string))) return NEXT
    const header = req.headers.cookie
    const decision = this.decide(header === undefined ? undefined : this.readCookie(header), req.headers)
    switch (decision.kind) {
      case 'new':
        return this.serveHere(ctx, this.servedHere)
      case 'own':
        ctx.log.debug(this.ownMachineLogFields, COOKIE_FOUND)
        return this.serveHere(ctx, this.servedHere)
      case 'rejected':
        this.warnRejected(ctx.log, decision.rejection as CookieRejection, this.readCookie(header as string) as string)
        return this.serveHere(ctx, this.servedHere)
    }
    if (debugging(ctx.log)) ctx.log.debug({ machine: decision.machine }, COOKIE_FOUND)
    switch (decision.kind) {
      case 'replay': return this.replay(ctx, decision.machine)
      case 'proxy': return this.proxyTo(ctx, decision.machine)
      case 'unavailable': return this.fallback(ctx, decision.machine)
      default:
        // 'routed': another part of Navigator replayed the request here; that routing stands.
        recordFor(ctx, decision.machine, 'serve')
        return NEXT
    }
  }

  private serveHere (ctx: RequestContext, session: StickySession): StepResult {
    record(ctx, session)
    addResponseHeaders(ctx, this.servedHereHeaders)
    return NEXT
  }

  private replay (ctx: RequestContext, target: string): StepResult {
    recordFor(ctx, target, 'replay')
    ctx.log.info({ machine: target }, REPLAY_LOG_LINE)
    removeResponseHeader(ctx, 'set-cookie')
    answer(ctx, this.options.replayStatus, ['fly-replay', `instance=${target}${this.replaySuffix}`, 'content-type', REPLAY_CONTENT_TYPE], REPLAY_BODY)
    return ANSWERED
  }

  /** The cookie's Machine cannot be reached: maintenance (cookie kept) or serve here (cookie moved to us). */
  private fallback (ctx: RequestContext, target: string): StepResult {
    if (this.options.fallbackMode === 'route_to_available') return this.serveHere(ctx, this.reassigned)
    recordFor(ctx, target, 'fallback')
    ctx.log.warn({ machine: target }, 'machine unavailable')
    this.maintenance(ctx)
    return ANSWERED
  }

  /** Streams the request to the cookie's Machine; the fallback answers when it cannot be reached before any body byte left. */
  private proxyTo (ctx: RequestContext, target: string): StepResult {
    const origin = this.peerOrigin(target)
    if (origin === null) return this.fallback(ctx, target)
    recordFor(ctx, target, 'proxy')
    let outcome: StepResult = ANSWERED
    return this.proxy.forward(ctx, { origin }, {
      headers: this.proxiedBy,
      onUnreachable: () => { outcome = this.fallback(ctx, target) }
    }).then(() => outcome)
  }

  private peerOrigin (target: string): string | null {
    const peer = this.options.peers.get(target)
    if (peer !== undefined) return peer
    const appName = this.options.appName
    return appName === null ? null : `http://${target}.vm.${appName}.internal:${this.options.port}`
  }

  private warnRejected (log: FastifyBaseLogger, reason: CookieRejection, value: string): void {
    const now = Date.now()
    if (now - (this.lastWarned.get(reason) as number) < REJECTION_LOG_INTERVAL_MS) return
    this.lastWarned.set(reason, now)
    log.warn({ reason, value: describeRejectedValue(value) }, 'Sticky session cookie rejected; assigning this Machine')
  }
}
