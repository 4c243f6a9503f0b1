import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { ReplayRule, ReplayTarget } from '@navigator/config'
import { DEFAULT_MAX_REPLAY_BODY, MACHINE_ID_PATTERN } from '@navigator/config'
import { ANSWERED, answer, createUpstreamProxy, NEXT, stepHook } from '@navigator/proxy'
import type { MaintenanceResponder, RequestContext, Step, StepResult, UpstreamProxy } from '@navigator/proxy'
import { InvalidOptionError } from './errors.js'
import { APP_PATTERN, REGION_PATTERN } from './grammar.js'
import { markRoutedHere, NAVIGATOR_VIA_HEADER, UNIDENTIFIED_MACHINE } from './loop-marker.js'
import { buildReplayHeader } from './replay-header.js'
import { navigatorReplayState } from './replay-src.js'
import { isReplayable } from './replayable.js'

/** The `state` of replays issued by the rules; a request that comes back with it is served, never bounced again. */
export const RULES_REPLAY_STATE = 'nav-rule'
export const REPLAY_RESPONSE_BODY = 'Replaying with fly-replay\n'

export interface FlyReplayRulesOptions {
  rules: ReplayRule[]
  /** This Machine's ID; default FLY_MACHINE_ID. */
  machineId?: string
  /** This app's name; default FLY_APP_NAME. */
  appName?: string
  /** This Machine's region; default FLY_REGION. */
  region?: string
  /** Port the targets listen on, for the direct proxy of requests that cannot be replayed. */
  port: number
  /** Largest body (Content-Length, bytes) answered with fly-replay; default 1,000,000 (Fly's 1 MB). */
  maxReplayBody?: number
  /** Proxy used for the direct path; one is created (and closed with the app) when omitted. */
  proxy?: UpstreamProxy
  /** Answers a request that cannot be routed (fly-replay-failed, unreachable target); see createMaintenanceResponder. */
  maintenance: MaintenanceResponder
  /** Private address (`http://host:port`) of a target, for tests and non-Fly clusters; null = no direct route. */
  resolveAddress?: (target: ReplayTarget) => string | null
}

interface CompiledRule {
  path: RegExp
  methods: ReadonlySet<string> | null
  status: number
  header: string
  /** True when this Machine already is the rule's target: the request is served here. */
  satisfied: boolean
  /** The rule names this very Machine (a `machine` target): no other Machine may serve what it matches. */
  pinnedHere: boolean
  origin: string | null
}

const ALIASES = new Set(['any', 'apac', 'eu', 'na', 'sa', 'us', 'usa'])

function optionalIdentity (name: string, value: string | undefined, grammar: RegExp): string | null {
  if (value === undefined || value === '') return null
  if (typeof value !== 'string' || !grammar.test(value)) {
    throw new InvalidOptionError(name, `${JSON.stringify(value)} does not match ${String(grammar)}`)
  }
  return value
}

/** Default private address of a target on Fly's 6PN network; null when the app name needed for it is unknown. */
function flyAddress (target: ReplayTarget, appName: string | null, port: number): string | null {
  if (target.kind === 'app') return `http://${target.app}.internal:${port}`
  if (appName === null) return null
  if (target.kind === 'machine') return `http://${target.machine}.vm.${appName}.internal:${port}`
  const region = target.regions[0]
  return ALIASES.has(region) ? `http://${appName}.internal:${port}` : `http://${region}.${appName}.internal:${port}`
}

function isSatisfied (target: ReplayTarget, machineId: string | null, appName: string | null, region: string | null): boolean {
  if (target.kind === 'machine') return target.machine === machineId
  if (target.kind === 'app') return target.app === appName
  return region !== null && target.regions.includes(region)
}

function compileRule (rule: ReplayRule, index: number, identity: { machineId: string | null, appName: string | null, region: string | null }, port: number, resolveAddress: FlyReplayRulesOptions['resolveAddress']): CompiledRule {
  const at = `rules[${index}]`
  if (rule === null || typeof rule !== 'object' || !(rule.path instanceof RegExp)) {
    throw new InvalidOptionError(at, 'each rule needs a compiled `path` RegExp')
  }
  if (!Number.isInteger(rule.status) || rule.status < 200 || rule.status > 599) {
    throw new InvalidOptionError(`${at}.status`, `${String(rule.status)} is not an HTTP status`)
  }
  if (rule.methods !== null && !(Array.isArray(rule.methods) && rule.methods.every((m) => typeof m === 'string'))) {
    throw new InvalidOptionError(`${at}.methods`, 'must be null or a list of method names')
  }
  const target = rule.target
  let header: string
  try {
    if (target?.kind === 'region') header = buildReplayHeader({ region: target.regions, state: RULES_REPLAY_STATE })
    else if (target?.kind === 'app') header = buildReplayHeader({ app: target.app, state: RULES_REPLAY_STATE })
    else if (target?.kind === 'machine') header = buildReplayHeader({ instance: target.machine, state: RULES_REPLAY_STATE })
    else throw new Error('must be a region, app or machine target')
  } catch (err) {
    throw new InvalidOptionError(`${at}.target`, (err as Error).message)
  }
  return {
    path: rule.path,
    methods: compileMethods(rule.methods),
    status: rule.status,
    header,
    satisfied: isSatisfied(target, identity.machineId, identity.appName, identity.region),
    pinnedHere: target.kind === 'machine' && target.machine === identity.machineId,
    origin: resolveAddress !== undefined ? resolveAddress(target) : flyAddress(target, identity.appName, port)
  }
}

interface RuleMatch {
  path: RegExp
  methods: ReadonlySet<string> | null
}

/** A rule's method list as the set its matcher tests (upper case), or null for every method. */
function compileMethods (methods: readonly string[] | null): ReadonlySet<string> | null {
  return methods === null ? null : new Set(methods.map((m) => m.toUpperCase()))
}

/** The index of the first rule whose method list and path pattern match a request's method and (original) path. */
function findRule (rules: readonly RuleMatch[], method: string, path: string): number {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]
    if (rule.methods !== null && !rule.methods.has(method)) continue
    if (rule.path.test(path)) return i
  }
  return -1
}

/** The rules, checked and compiled, as a pipeline step; `close` closes the proxy made when none was given. */
export interface ReplayRules {
  step: Step
  close: () => Promise<void>
}

function checkOptions (options: FlyReplayRulesOptions): void {
  if (options === null || typeof options !== 'object' || !Array.isArray(options.rules)) {
    throw new InvalidOptionError('rules', 'must be a list of replay rules')
  }
  if (typeof options.maintenance !== 'function') throw new InvalidOptionError('maintenance', 'must be a function (ctx), made by createMaintenanceResponder')
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new InvalidOptionError('port', `${String(options.port)} is not a TCP port`)
  }
  if (options.resolveAddress !== undefined && typeof options.resolveAddress !== 'function') {
    throw new InvalidOptionError('resolveAddress', 'must be a function (target) => origin')
  }
  const maxBody = options.maxReplayBody
  if (maxBody !== undefined && (!Number.isSafeInteger(maxBody) || maxBody < 0)) {
    throw new InvalidOptionError('maxReplayBody', `${String(maxBody)} is not a number of bytes`)
  }
}

/**
 * The `routes.fly.replay` rules as a step, on the original path: a matching request is answered with fly-replay,
 * or proxied to the target's private address when its body is too large to replay, or answered with the
 * maintenance page when it cannot be routed. A request this Machine satisfies, or that Navigator replayed here
 * already, goes on; one that Navigator proxied here already (`x-navigator-via`) is never sent on again.
 */
export function createReplayRules (options: FlyReplayRulesOptions): ReplayRules {
  checkOptions(options)
  const identity = {
    machineId: optionalIdentity('machineId', options.machineId ?? process.env.FLY_MACHINE_ID, MACHINE_ID_PATTERN),
    appName: optionalIdentity('appName', options.appName ?? process.env.FLY_APP_NAME, APP_PATTERN),
    region: optionalIdentity('region', options.region ?? process.env.FLY_REGION, REGION_PATTERN)
  }
  const rules = options.rules.map((rule, index) => compileRule(rule, index, identity, options.port, options.resolveAddress))
  const replayHeaders = rules.map((rule) => Object.freeze(['fly-replay', rule.header, 'cache-control', 'no-store', 'content-type', 'text/plain; charset=utf-8']))
  const maxReplayBody = options.maxReplayBody ?? DEFAULT_MAX_REPLAY_BODY
  const maintenance = options.maintenance
  const own = options.proxy === undefined && rules.length > 0 ? createUpstreamProxy() : null
  const upstream = options.proxy ?? own
  const marked = Object.freeze({ [NAVIGATOR_VIA_HEADER]: identity.machineId ?? UNIDENTIFIED_MACHINE })

  function unreachable (ctx: RequestContext, origin: string, err: Error): void {
    ctx.log.warn({ upstream: origin, code: (err as { code?: string }).code }, 'fly-replay rule: target unreachable')
    maintenance(ctx)
  }

  function cannotRoute (ctx: RequestContext, why: string): StepResult {
    ctx.log.warn(why)
    maintenance(ctx)
    return ANSWERED
  }

  const step: Step = {
    name: 'replay-rules',
    run (ctx) {
      if (rules.length === 0) return NEXT
      const index = findRule(rules, ctx.req.method as string, ctx.path)
      if (index === -1) return NEXT
      const rule = rules[index]
      if (rule.satisfied) {
        // A rule naming this Machine: sticky sessions, after this step, must not send the request to another one either.
        // (A region or app target may be satisfied by other Machines too, among them the cookie's.)
        if (rule.pinnedHere) markRoutedHere(ctx.req)
        return NEXT
      }
      const headers = ctx.req.headers
      // Replayed by Navigator already (a rule, or sticky sessions sending it to the user's Machine): served here.
      if (navigatorReplayState(headers['fly-replay-src']) !== null) return NEXT
      if (headers['fly-replay-failed'] !== undefined) {
        maintenance(ctx)
        return ANSWERED
      }
      // Proxied here by Navigator already: this Machine is not the rule's target, and a second hop could loop.
      if (headers[NAVIGATOR_VIA_HEADER] !== undefined) return cannotRoute(ctx, 'fly-replay rule: the request was proxied here by another Machine and this Machine is not the rule\'s target')
      if (isReplayable(headers, maxReplayBody)) {
        answer(ctx, rule.status, replayHeaders[index], REPLAY_RESPONSE_BODY)
        return ANSWERED
      }
      const origin = rule.origin
      if (origin === null || upstream === null) return cannotRoute(ctx, 'fly-replay rule: the request cannot be replayed and the target has no private address')
      upstream.relay(ctx, { origin }, { headers: marked, onUnreachable: (err) => { unreachable(ctx, origin, err) } })
      return ANSWERED
    }
  }
  return { step, close: async () => { await own?.close() } }
}

async function flyReplayRulesPlugin (fastify: FastifyInstance, options: FlyReplayRulesOptions): Promise<void> {
  const { step, close } = createReplayRules(options)
  if (options.rules.length === 0) return
  fastify.addHook('onRequest', stepHook(step))
  fastify.addHook('onClose', close)
}

export const flyReplayRules = fp(flyReplayRulesPlugin, { fastify: '5.x', name: '@navigator/fly-replay' })
