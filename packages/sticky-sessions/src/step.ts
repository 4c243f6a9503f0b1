import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { buildReplayHeader, isRoutedHere, parseReplayFailed } from '@navigator/fly-replay'
import { addResponseHeaders, ANSWERED, answer, NEXT, removeResponseHeader } from '@navigator/proxy'
import type { MaintenanceResponder, RequestContext, Step, StepResult, UpstreamProxy } from '@navigator/proxy'
import {
  COOKIE_REJECTIONS, createCookieCodec, createCookieReader, describeRejectedValue, stickySetCookie, type CookieRejection
} from './cookie.js'
import { createDecider, type Decider } from './decide.js'
import { createDirectRouter, type DirectRouter } from './direct-proxy.js'
import type { MachineDiscovery } from './discovery.js'
import { defaultMaintenance } from './maintenance.js'
import { STICKY_REPLAY_STATE, type ResolvedOptions, type StickyDecision, type StickyObserver } from './options.js'
import { compileStickyPaths, stickyMatchPath } from './paths.js'

export type StickyAction = 'serve' | 'replay' | 'proxy' | 'fallback'

/** What the step decided for a request on a sticky path. */
export interface StickySession {
  /** The Machine the cookie names once the decision is applied. */
  machine: string
  action: StickyAction
}

/** Logged once when the first sticky cookie this step sets is Secure and the request came over plain HTTP. */
export const SECURE_OVER_HTTP_HINT = 'the sticky cookie is Secure (cookie_secure: true) but this request came over plain HTTP: ' +
  'clients keep a Secure cookie only from https (browsers also from localhost), so the session will not stick here; ' +
  'set cookie_secure: false for local testing without TLS'

export const REPLAY_RESPONSE_BODY = 'Replaying to the Machine that holds this session\n'
const REPLAY_BODY = Buffer.from(REPLAY_RESPONSE_BODY)
const REPLAY_CONTENT_TYPE = 'text/plain; charset=utf-8'
const REPLAY_LOG_LINE = 'Routing to machine via Fly-Replay'
const COOKIE_FOUND = 'Sticky session cookie found'
const UNAVAILABLE = 'machine unavailable'
/** Debug line of a replay that came back with `reason=no_candidate`: discovery is asked to look again at once. */
export const NO_CANDIDATE_REFRESH = 'sticky sessions: Fly found no candidate for the replay; refreshing Machine discovery'
/** Why a Machine that discovery lists could not be reached on the direct path, in the warning that says so. */
export const ASLEEP_HINT = 'a body over the replay limit cannot wake a stopped or suspended Machine over the private network; direct_proxy: flycast would'
/** The values Fly gives `fly-replay-cache-status`; anything else is logged as "other", never as sent. */
const CACHE_STATUSES = new Set(['hit', 'miss', 'bypass'])
/** Rejected cookies are logged at most once per interval for each reason. */
export const REJECTION_LOG_INTERVAL_MS = 1_000
/** With `debugHeader`, every response on a sticky path says what was decided: `<decision>; machine=<id>`. */
export const STICKY_DEBUG_HEADER = 'x-navigator-sticky'

/** Headers of a response served here: the Set-Cookie for this Machine, with the debug header when it is on. */
type ServedHereHeaders = Readonly<Record<string, string>>

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
 * The sticky-session step: reads the cookie (or the sticky header), decides (decide.ts), and applies the decision:
 * serve here (and set the cookie to this Machine), answer with fly-replay, proxy a body too large to replay to the
 * cookie's Machine (direct-proxy.ts), or fall back (maintenance page, or serve here) when that Machine is
 * unavailable. Everything that is the same for every request is computed once, here.
 */
export class StickyStep implements Step {
  readonly name = 'sticky-sessions'
  private readonly matchPath: (path: string) => boolean
  private readonly decide: Decider
  private readonly readCookie: (header: string) => string | undefined
  private readonly headerName: string | null
  /** This Machine's cookie for a new visitor or one already pinned here (`served`), for a re-pin, for a rejected cookie by reason. */
  private readonly servedHereHeaders: ServedHereHeaders
  private readonly repinnedHeaders: ServedHereHeaders
  private readonly rejectedHeaders: ReadonlyMap<CookieRejection, ServedHereHeaders>
  private readonly debugHeader: boolean
  private readonly onDecision: StickyObserver | null
  /** `instance=` (Fly must deliver there or hand the request back) or `prefer_instance=` (cacheable by Fly). */
  private readonly replayPrefix: string
  /** Everything after `instance=<id>` of our replays; the same for every target. */
  private readonly replaySuffix: string
  private readonly maintenance: MaintenanceResponder
  private readonly route: DirectRouter
  private readonly servedHere: StickySession
  private readonly reassigned: StickySession
  private readonly ownMachineLogFields: Readonly<{ machine: string }>
  private readonly lastWarned = new Map<CookieRejection, number>(COOKIE_REJECTIONS.map((reason) => [reason, 0]))
  /** A Secure cookie is set over plain HTTP at most once with a hint: decided on the first cookie this step sets. */
  private secureHintPending: boolean

  constructor (private readonly options: ResolvedOptions, machineId: string, private readonly discovery: MachineDiscovery, private readonly proxy: UpstreamProxy) {
    this.matchPath = compileStickyPaths(options.paths)
    const codec = createCookieCodec(options.secrets)
    this.decide = createDecider({ machineId, codec, discovery, replayState: STICKY_REPLAY_STATE, maxReplayBody: options.maxReplayBody })
    this.readCookie = createCookieReader(options.cookieName)
    this.headerName = options.headerName
    // This Machine's Set-Cookie (and sticky header) never change: made once, and shared by every answer as they are.
    const ownValue = codec.encode(machineId)
    const servedHere = Object.freeze({
      'set-cookie': stickySetCookie(options, ownValue),
      ...options.headerName === null ? {} : { [options.headerName]: ownValue }
    })
    this.debugHeader = options.debugHeader
    this.onDecision = options.onDecision
    // With the debug header, each way of serving here has its own frozen object, so no answer merges two of them.
    const withDebug = (decision: string): ServedHereHeaders =>
      options.debugHeader ? Object.freeze({ ...servedHere, [STICKY_DEBUG_HEADER]: `${decision}; machine=${machineId}` }) : servedHere
    this.servedHereHeaders = withDebug('served')
    this.repinnedHeaders = withDebug('re-pinned')
    this.rejectedHeaders = new Map(COOKIE_REJECTIONS.map((reason) => [reason, withDebug(`rejected=${reason}`)]))
    // Fly caches no replay that carries state, a timeout or a fallback: with the cache on, the replay is the target alone.
    this.replayPrefix = options.replayCache ? 'prefer_instance=' : 'instance='
    // The ID itself passed the codec's strict check, as every target does before it is replayed to.
    this.replaySuffix = options.replayCache
      ? ''
      : buildReplayHeader({ instance: machineId, state: STICKY_REPLAY_STATE, timeoutMs: options.replayTimeoutMs, fallback: 'force_self' })
        .slice(`instance=${machineId}`.length)
    this.maintenance = options.maintenance ?? defaultMaintenance
    this.route = createDirectRouter(options, machineId)
    this.servedHere = Object.freeze({ machine: machineId, action: 'serve' })
    this.reassigned = Object.freeze({ machine: machineId, action: 'fallback' })
    this.ownMachineLogFields = Object.freeze({ machine: machineId })
    this.secureHintPending = options.cookieSecure
  }

  run (ctx: RequestContext): StepResult {
    const req = ctx.req
    if (!this.matchPath(stickyMatchPath(req.url as string))) return NEXT
    const headers = req.headers
    const cacheStatus = headers['fly-replay-cache-status']
    if (cacheStatus !== undefined) this.logCacheStatus(ctx.log, cacheStatus)
    const cookie = headers.cookie === undefined ? undefined : this.readCookie(headers.cookie)
    const value = cookie ?? this.headerValue(headers)
    const decision = this.decide(value, headers)
    switch (decision.kind) {
      case 'new':
        this.onDecision?.('new', null, this.servedHere.machine, ctx)
        return this.serveHere(ctx, this.servedHere, this.servedHereHeaders)
      case 'own':
        ctx.log.debug(this.ownMachineLogFields, COOKIE_FOUND)
        this.onDecision?.('own', null, this.servedHere.machine, ctx)
        return this.serveHere(ctx, this.servedHere, this.servedHereHeaders)
      case 'rejected':
        return this.rejected(ctx, decision.rejection as CookieRejection, value as string, cookie === undefined ? 'header' : 'cookie')
    }
    if (debugging(ctx.log)) ctx.log.debug({ machine: decision.machine }, COOKIE_FOUND)
    if (decision.kind === 'unavailable') this.refreshOnNoCandidate(ctx.log, headers, decision.machine)
    // A replay rule naming this Machine matched the request: that routing stands, as for a request it replayed here,
    // whether the cookie's Machine is up (no replay, no proxy) or not (no fallback: this Machine serves the path).
    switch (isRoutedHere(req) ? 'routed' : decision.kind) {
      case 'replay': return this.replay(ctx, decision.machine)
      case 'proxy': return this.proxyTo(ctx, decision.machine)
      case 'unavailable': return this.fallback(ctx, decision.machine)
      default:
        // 'routed': another part of Navigator replayed or proxied the request here; that routing stands.
        recordFor(ctx, decision.machine, 'serve')
        this.decided(ctx, 'routed', decision.machine)
        return NEXT
    }
  }

  /** A decision about another Machine: told to the observer, and said in the debug header when it is on. */
  private decided (ctx: RequestContext, decision: StickyDecision, machine: string): void {
    this.onDecision?.(decision, null, machine, ctx)
    if (this.debugHeader) addResponseHeaders(ctx, { [STICKY_DEBUG_HEADER]: `${decision}; machine=${machine}` })
  }

  /** A cookie (or sticky header) that cannot stand: served here and pinned to this Machine, with a warning. */
  private rejected (ctx: RequestContext, reason: CookieRejection, value: string, from: 'cookie' | 'header'): StepResult {
    this.warnRejected(ctx.log, reason, value, from)
    this.onDecision?.('rejected', reason, this.servedHere.machine, ctx)
    return this.serveHere(ctx, this.servedHere, this.rejectedHeaders.get(reason) as ServedHereHeaders)
  }

  /** The sticky header's value, read only when there is no cookie; a repeated header is one invalid value. */
  private headerValue (headers: IncomingHttpHeaders): string | undefined {
    if (this.headerName === null) return undefined
    const value = headers[this.headerName]
    return Array.isArray(value) ? value.join(', ') : value
  }

  private serveHere (ctx: RequestContext, session: StickySession, headers: ServedHereHeaders): StepResult {
    record(ctx, session)
    addResponseHeaders(ctx, headers)
    if (this.secureHintPending) this.hintSecureOverHttp(ctx)
    return NEXT
  }

  /**
   * A Secure cookie that arrives over plain HTTP (a local port, no TLS in front) is dropped by curl's cookie jar and
   * by browsers other than on localhost, so stickiness seems not to work when testing locally: said once, with the fix.
   */
  private hintSecureOverHttp (ctx: RequestContext): void {
    this.secureHintPending = false
    const encrypted = (ctx.req.socket as { encrypted?: boolean }).encrypted === true
    if (encrypted || ctx.req.headers['x-forwarded-proto'] === 'https') return
    ctx.log.info(SECURE_OVER_HTTP_HINT)
  }

  private replay (ctx: RequestContext, target: string): StepResult {
    recordFor(ctx, target, 'replay')
    ctx.log.info({ machine: target }, REPLAY_LOG_LINE)
    removeResponseHeader(ctx, 'set-cookie')
    this.onDecision?.('replayed', null, target, ctx)
    const headers = ['fly-replay', `${this.replayPrefix}${target}${this.replaySuffix}`, 'content-type', REPLAY_CONTENT_TYPE]
    if (this.debugHeader) headers.push(STICKY_DEBUG_HEADER, `replayed; machine=${target}`)
    answer(ctx, this.options.replayStatus, headers, REPLAY_BODY)
    return ANSWERED
  }

  /** The cookie's Machine cannot be reached: maintenance (cookie kept) or serve here (cookie moved to us). */
  private fallback (ctx: RequestContext, target: string): StepResult {
    if (this.options.fallbackMode === 'route_to_available') {
      this.onDecision?.('re-pinned', null, target, ctx)
      return this.serveHere(ctx, this.reassigned, this.repinnedHeaders)
    }
    return this.unavailable(ctx, target, null)
  }

  /** The maintenance page with the cookie left on `target`: the user's data is there, and Retry-After brings them back. */
  private unavailable (ctx: RequestContext, target: string, hint: string | null): StepResult {
    recordFor(ctx, target, 'fallback')
    ctx.log.warn(hint === null ? { machine: target } : { machine: target, hint }, UNAVAILABLE)
    this.decided(ctx, 'fallback', target)
    this.maintenance(ctx)
    return ANSWERED
  }

  /** Streams the request to the cookie's Machine; when it cannot be reached before any body byte left, see `unreachable`. */
  private proxyTo (ctx: RequestContext, target: string): StepResult {
    const route = this.route(target)
    if (route === null) return this.fallback(ctx, target)
    recordFor(ctx, target, 'proxy')
    // Said before the answer leaves; a fallback after an unreachable Machine replaces it with its own.
    if (this.debugHeader) addResponseHeaders(ctx, { [STICKY_DEBUG_HEADER]: `proxied; machine=${target}` })
    let outcome: StepResult | null = null
    return this.proxy.forward(ctx, { origin: route.origin }, {
      headers: route.headers,
      onUnreachable: () => { outcome = this.unreachable(ctx, target) }
    }).then(() => {
      if (outcome !== null) return outcome
      this.onDecision?.('proxied', null, target, ctx)
      return ANSWERED
    })
  }

  /**
   * The direct path could not connect. Over the private network (vm) a Machine that discovery still lists exists
   * but is stopped or suspended, and will be back: the maintenance page, cookie kept, whatever fallbackMode says
   * (moving the user would strand their data). One that discovery no longer lists is gone: the cookie is rejected
   * and the request served here. Otherwise (Flycast, or discovery does not know) fallbackMode decides.
   */
  private unreachable (ctx: RequestContext, target: string): StepResult {
    if (this.options.directProxy === 'vm') {
      const listed = this.discovery.has(target)
      if (listed === true) return this.unavailable(ctx, target, ASLEEP_HINT)
      if (listed === false) return this.rejected(ctx, 'machine-unknown', target, 'cookie')
    }
    return this.fallback(ctx, target)
  }

  /** Fly found no Machine to deliver a replay to: the cookie's Machine may be gone, so discovery looks again now. */
  private refreshOnNoCandidate (log: FastifyBaseLogger, headers: IncomingHttpHeaders, target: string): void {
    const failed = headers['fly-replay-failed']
    if (failed === undefined || this.discovery.refreshNow === undefined) return
    if (parseReplayFailed(failed)?.reason !== 'no_candidate') return
    log.debug({ machine: target }, NO_CANDIDATE_REFRESH)
    this.discovery.refreshNow()
  }

  private logCacheStatus (log: FastifyBaseLogger, status: string | string[]): void {
    if (!debugging(log)) return
    log.debug({ status: typeof status === 'string' && CACHE_STATUSES.has(status) ? status : 'other' }, 'fly-replay-cache-status')
  }

  private warnRejected (log: FastifyBaseLogger, reason: CookieRejection, value: string, from: 'cookie' | 'header'): void {
    const now = Date.now()
    if (now - (this.lastWarned.get(reason) as number) < REJECTION_LOG_INTERVAL_MS) return
    this.lastWarned.set(reason, now)
    log.warn({ reason, from, value: describeRejectedValue(value) }, 'Sticky session cookie rejected; assigning this Machine')
  }
}
