// Reading a config: YAML (with positions) -> ${NAME} substitution -> the schema's
// check (and, for a file that fails it, TypeBox's errors) -> semantic checks and normalisation. Every problem
// of every pass is collected; the ConfigError lists them all.

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseDuration } from './duration.js'
import { parseAddressBlock } from './address-block.js'
import { checkAuthFile, normaliseAuth } from './auth.js'
import { checkCgiScripts, normaliseCgiScripts } from './cgi-scripts.js'
import { normaliseLogging } from './logging.js'
import { normaliseCable } from './cable.js'
import { normaliseHealthCheck } from './health-check.js'
import { maintenancePageOf, normaliseMaintenance } from './maintenance.js'
import { normaliseReverseProxies } from './reverse-proxies.js'
import { checkLaunchPaths, checkManagedLaunchPaths } from './launch-paths.js'
import { parseMemorySize } from './memory-size.js'
import { checkRunAs } from './run-as.js'
import { DEFAULT_LISTEN_HOST, DEFAULT_LISTEN_PORT, parseListen } from './listen.js'
import { isValidMachineId } from './machine-id.js'
import { pathPatternProblem } from './paths.js'
import { cookieDomainProblem, stickyHeaderProblem } from './sticky-fields.js'
import { checkBacktracking, decideBacktracking, type PatternAt } from './backtracking.js'
import { ConfigError, ProblemCollector, sortProblems, type KeyPath } from './problems.js'
import { translateGoForms } from './go-forms.js'
import { yamlLibrary } from './yaml-lib.js'
import { CONFIG_SCHEMA } from './generated/config-schema.js'
import { environmentLookup, referencedNames, substitute, tenantLookup, type VariableLookup } from './substitute.js'
import { normaliseStaticRules } from './static-rules.js'
import { BOT_DETECTION_OFF, normaliseBotDetection, normaliseHostname, normaliseRootPath } from './site.js'
import { reportSchemaProblems } from './validate.js'
import { documentValue, parseFast, parseWithPositions, type PositionedYaml } from './yaml-source.js'
import {
  DEFAULT_COOKIE_HTTP_ONLY, DEFAULT_COOKIE_MAX_AGE, DEFAULT_COOKIE_NAME, DEFAULT_COOKIE_PATH, DEFAULT_COOKIE_SAMESITE,
  DEFAULT_COOKIE_SECURE, DEFAULT_REPLAY_CACHE, DEFAULT_IDLE_ACTION, DEFAULT_IDLE_API_SOCKET,
  DEFAULT_IDLE_TENANT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_PUBLIC_DIR, DEFAULT_REPLAY_STATUS, DEFAULT_REPLAY_TIMEOUT,
  DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_START_PORT, DEFAULT_STARTUP_TIMEOUT, DEFAULT_TENANT_ARGS, DEFAULT_TENANT_COMMAND,
  DEFAULT_TENANT_HEALTH_CHECK, DEFAULT_ALLOW_DOTFILES, DEFAULT_COOKIE_PARTITIONED, DEFAULT_DIRECT_PROXY,
  DEFAULT_MAX_REPLAY_BODY, DEFAULT_PEER_WRITE_TIMEOUT, DEFAULT_METRICS_ALLOW, DEFAULT_METRICS_PATH, DEFAULT_STATUS_ALLOW, DEFAULT_STATUS_PATH, DEFAULT_STICKY_DEBUG_HEADER,
  DEFAULT_MANAGED_AUTO_RESTART, DEFAULT_MANAGED_START_DELAY, DEFAULT_REDIRECT_STATUS,
  DEFAULT_MAX_SIZE, DEFAULT_PORT_ENV_VAR, DEFAULT_TENANT_START_DELAY, DEFAULT_TRACK_WEBSOCKETS
} from './defaults.js'
import type {
  AddressBlock, ApplicationsConfig, ManagedProcessConfig, DirectProxyMode, FallbackMode, IdleAction, IdleConfig, ListenAddress, MetricsConfig, NavigatorConfig, ReplayRule, ReplayTarget,
  RewriteRule, RoutesConfig, SameSite, ServerConfig, StandaloneServerConfig, StartMode, StatusConfig, StickySessionsConfig, HookConfig, ServerHooks, TenantHooks,
  TenantConfig
} from './types.js'

export { ConfigError } from './problems.js'

export interface LoadOptions {
  /** Environment for `${NAME}`; default `process.env`. */
  env?: NodeJS.ProcessEnv
  /**
   * Also check that every tenant's, standalone server's and managed process's working directory and command exist (the file system
   * as it is now): what `navigator --check`, a start and a reload do. Default false.
   */
  launchPaths?: boolean
}

export interface ParseOptions extends LoadOptions {
  /** File name used in problems (and resolved into `config.file`); default none (problems say `<string>`). */
  file?: string
  /** Folder that relative paths resolve against; default the file's folder, else the current directory. */
  dir?: string
  /** Read the YAML with the position-keeping reader even when the file is valid (tests compare both readers). */
  positions?: boolean
}

/** Reads, validates and normalises a YAML config file. Throws `ConfigError` listing every problem. */
export async function loadConfig (file: string, options: LoadOptions = {}): Promise<NavigatorConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: `cannot read the config file (${reason})` }])
  }
  const read = readConfig(text, { ...options, file })
  // The patterns recheck has not decided yet are checked in its worker while this thread goes on (serving, at a
  // reload); the check below then finds every verdict kept.
  await decideBacktracking(read.patterns)
  return finishConfig(read, options)
}

/** `loadConfig` from a string. */
export function parseConfig (text: string, options: ParseOptions = {}): NavigatorConfig {
  return finishConfig(readConfig(text, options), options)
}

/** A config read as far as its own keys go: what the checks of `finishConfig` need. */
interface ReadConfig {
  absoluteFile: string | null
  dir: string
  env: NodeJS.ProcessEnv
  value: unknown
  config: Normalised
  patterns: PatternAt[]
  problems: ProblemCollector
  warnings: ProblemCollector
}

/** Reads the YAML, its Go spellings, the environment and the schema; throws `ConfigError` when the YAML is broken. */
function readConfig (text: string, options: ParseOptions): ReadConfig {
  const env = options.env ?? process.env
  const absoluteFile = options.file === undefined ? null : resolve(options.file)
  const dir = resolve(options.dir ?? (absoluteFile === null ? process.cwd() : dirname(absoluteFile)))
  let positioned: PositionedYaml | undefined
  const source = (): PositionedYaml => (positioned ??= parseWithPositions(text))
  const problems = new ProblemCollector(options.file ?? '<string>', source)

  let raw: unknown
  const fast = options.positions === true ? undefined : parseFast(text)
  if (fast === undefined) {
    const { document } = source()
    if (document.errors.length > 0) {
      for (const error of document.errors) problems.addAtOffset(error.pos[0], error.message.split('\n')[0])
      throw new ConfigError(problems.problems)
    }
    const converted = documentValue(source())
    if ('problems' in converted) {
      for (const problem of converted.problems) problems.addAtOffset(problem.offset, problem.message)
      throw new ConfigError(problems.problems)
    }
    raw = converted.value ?? {}
  } else {
    raw = fast.value ?? {}
  }
  const warnings = new ProblemCollector(options.file ?? '<string>', source)
  const translated = translateGoForms(raw, problems, warnings)
  const value = substituteEnvironment(translated.value, [], environmentLookup(env), problems)
  const before = problems.size
  reportSchemaProblems(value, problems)
  if (translated.goSpelled) {
    for (const problem of problems.problems.slice(before)) {
      if (problem.message.startsWith('unknown key')) problem.message += ' (the Go Navigator ignores keys it does not know: this one did nothing there either)'
    }
  }
  const patterns: PatternAt[] = []
  const config = normalise(value, { dir, env, problems, patterns })
  return { absoluteFile, dir, env, value, config, patterns, problems, warnings }
}

/** The checks that need the whole config (patterns, paths on disk), then the config or every problem at once. */
function finishConfig (read: ReadConfig, options: LoadOptions): NavigatorConfig {
  const { absoluteFile, dir, env, value, config, patterns, problems, warnings } = read
  checkBacktracking(patterns, problems)
  if (problems.size === 0 && options.launchPaths === true) {
    checkLaunchPaths(config.applications, problems, env)
    checkRunAs(config.applications, problems)
    checkManagedLaunchPaths(config.managedProcesses, problems, env)
    checkAuthFile(config.auth, problems)
    checkCgiScripts(config.server.cgiScripts, problems)
  }
  if (problems.size > 0) throw new ConfigError(problems.problems)
  warnStopHookReloads(value, warnings)
  return { file: absoluteFile, dir, ...config, warnings: sortProblems(warnings.problems) }
}

/** `reload_config` of a hooks.server.stop hook: accepted (the Go types have it), and said to do nothing. */
function warnStopHookReloads (value: unknown, warnings: ProblemCollector): void {
  const stop = record(record(record(value).hooks).server).stop
  const hooks = Array.isArray(stop) ? stop.map((hook, index) => [hook, ['hooks', 'server', 'stop', index]] as const) : [[stop, ['hooks', 'server', 'stop']] as const]
  for (const [hook, at] of hooks) {
    if (typeof record(hook).reload_config !== 'string') continue
    warnings.add([...at, 'reload_config'], 'reload_config does nothing in a stop hook: Navigator is stopping; remove it', 'key')
  }
}

/**
 * The file in this project's spelling: the Go Navigator's keys translated (go-forms.ts), `${NAME}` references kept,
 * as YAML. What `navigator --check --print` prints. Throws `ConfigError` like `parseConfig` for an invalid file.
 */
export function canonicalYaml (text: string, options: ParseOptions = {}): string {
  parseConfig(text, options)
  const { document } = parseWithPositions(text)
  const scratch = new ProblemCollector(options.file ?? '<string>', () => parseWithPositions(text))
  const translated = translateGoForms(document.toJS() ?? {}, scratch, scratch)
  return yamlLibrary().stringify(inSchemaOrder(translated.value, CONFIG_SCHEMA), { lineWidth: 0 })
}

/** `value` with the keys of each mapping in the order the schema lists them (unknown keys last, as they were). */
function inSchemaOrder (value: unknown, schema: unknown): unknown {
  const node = isRecord(schema) ? schema : {}
  const branches = [node, ...(Array.isArray(node.anyOf) ? node.anyOf : [])].filter(isRecord)
  if (Array.isArray(value)) {
    const items = branches.find((branch) => branch.items !== undefined)?.items
    return value.map((item) => inSchemaOrder(item, items))
  }
  if (!isRecord(value)) return value
  const properties = record(branches.find((branch) => isRecord(branch.properties))?.properties)
  const known = Object.keys(properties).filter((key) => Object.hasOwn(value, key))
  const rest = Object.keys(value).filter((key) => !Object.hasOwn(properties, key))
  return Object.fromEntries([...known, ...rest].map((key) => [key, inSchemaOrder(value[key], properties[key])]))
}

// Tenant command/args/env and applications env/command/args keep their references:
// they resolve per tenant (var, PORT, environment), checked in checkTenantReferences.
function keepsReferences (path: KeyPath): boolean {
  // Hooks resolve theirs when they run: a tenant's from its var and env, the server's from the environment.
  if (path[0] === 'hooks' || path[3] === 'hooks') return path.includes('args') || path[path.length - 1] === 'command'
  if (path[0] !== 'applications') return false
  if (path[1] === 'env' || path[1] === 'command' || path[1] === 'args') return true
  return path[1] === 'tenants' && (path[3] === 'env' || path[3] === 'command' || path[3] === 'args')
}

// Environment values, tenant variables and arguments are strings for the process; `WORKERS: 2`
// and `args: [-p, 4001]` are what people write, so numbers and booleans there become strings.
function holdsStrings (path: KeyPath): boolean {
  const parent = path[path.length - 2]
  if (parent === 'env' || parent === 'var' || parent === 'args') return path[0] === 'applications' || path[0] === 'managed_processes' || path[0] === 'hooks'
  return false
}

const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/

/** A substituted value as YAML would have read it: a whole number or true/false, else the text. */
function typedScalar (value: string): string | number | boolean {
  if (/^-?(?:0|[1-9][0-9]{0,14})$/.test(value)) return Number(value)
  if (value === 'true' || value === 'false') return value === 'true'
  return value
}

// Also drops map entries without a value (`key:` with nothing after it means "not set", so the default
// applies) and the top-level `x-` extension keys, which only hold YAML anchors.
function substituteEnvironment (value: unknown, path: KeyPath, lookup: VariableLookup, problems: ProblemCollector): unknown {
  if ((typeof value === 'number' || typeof value === 'boolean') && holdsStrings(path)) return String(value)
  if (typeof value === 'string') {
    if (keepsReferences(path)) return value
    const result = substitute(value, lookup)
    if (result.missing.length > 0) {
      problems.add(path, `${result.missing.map((name) => `\${${name}}`).join(', ')} ${result.missing.length === 1 ? 'is' : 'are'} not set in the environment`)
    }
    // A whole value that is one reference (`start_port: ${TENANT_PORT:-4000}`) takes the type of what it became.
    if (WHOLE_REFERENCE.test(value) && result.missing.length === 0) return typedScalar(result.value)
    return result.value
  }
  if (Array.isArray(value)) return value.map((item, index) => substituteEnvironment(item, [...path, index], lookup, problems))
  if (isRecord(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, child] of Object.entries(value)) {
      if (child === null || child === undefined || (path.length === 0 && key.startsWith('x-'))) continue
      out[key] = substituteEnvironment(child, [...path, key], lookup, problems)
    }
    return out
  }
  return value
}

interface Context {
  dir: string
  env: NodeJS.ProcessEnv
  problems: ProblemCollector
  /** The regular expressions compiled so far, checked for catastrophic backtracking once all are known. */
  patterns: PatternAt[]
}

type Normalised = Pick<NavigatorConfig, 'server' | 'routes' | 'applications' | 'logging' | 'managedProcesses' | 'auth' | 'maintenance' | 'serverHooks' | 'cable'>

// The schema pass has reported wrong types already; the helpers below read
// defensively so that semantic checks still run on everything else.
function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
const record = (value: unknown): Record<string, unknown> => (isRecord(value) ? value : {})
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : [])
const text = (value: unknown, fallback: string): string => (typeof value === 'string' ? value : fallback)
const flag = (value: unknown, fallback: boolean): boolean => (typeof value === 'boolean' ? value : fallback)
const integer = (value: unknown, fallback: number): number => (Number.isInteger(value) ? value as number : fallback)
const strings = (value: unknown): string[] => list(value).filter((item): item is string => typeof item === 'string')
function stringRecord (value: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, child] of Object.entries(record(value))) if (typeof child === 'string') out[key] = child
  return out
}

function durationMs (value: unknown, path: KeyPath, fallback: string, ctx: Context, minimumMs = 0): number {
  const given = value === 0 ? '0' : value
  try {
    const ms = parseDuration(typeof given === 'string' ? given : fallback)
    if (ms < minimumMs) {
      ctx.problems.add(path, minimumMs === 1000 ? 'must be at least 1s' : 'must be longer than 0')
    }
    return ms
  } catch (err) {
    ctx.problems.add(path, (err as Error).message)
    return parseDuration(fallback)
  }
}

/**
 * A pattern of the config as a RegExp. Go's leading inline flags (`(?i)`, `(?s)`, `(?m)`, combined as `(?is)`),
 * which the Go Navigator's examples use and JavaScript does not know, become the RegExp's flags.
 */
export function compileConfigRegex (source: string): RegExp {
  const flags = /^\(\?([ims]+)\)/.exec(source)
  if (flags === null) return new RegExp(source)
  return new RegExp(source.slice(flags[0].length), [...new Set(flags[1])].join(''))
}

function regex (value: unknown, path: KeyPath, ctx: Context): RegExp {
  let compiled: RegExp
  try {
    compiled = compileConfigRegex(text(value, ''))
  } catch (err) {
    ctx.problems.add(path, (err as Error).message)
    return /(?!)/
  }
  ctx.patterns.push({ pattern: compiled, path })
  return compiled
}

function urlPath (value: unknown, path: KeyPath, ctx: Context): void {
  if (typeof value === 'string' && !/^\/[^\s?#]*$/.test(value)) {
    ctx.problems.add(path, 'must be a URL path starting with "/" (no spaces, "?" or "#")')
  }
}

function normalise (value: unknown, ctx: Context): Normalised {
  const root = record(value)
  const server = normaliseServer(record(root.server), record(root.maintenance), ctx, record(root.auth).enabled === true)
  return {
    server,
    cable: normaliseCable(record(root.cable), server, ctx.problems),
    maintenance: normaliseMaintenance(record(root.maintenance)),
    routes: normaliseRoutes(record(root.routes), ctx),
    applications: normaliseApplications(record(root.applications), record(record(root.hooks).tenant), ctx),
    logging: normaliseLogging(record(root.logging), ctx.dir, ctx.problems),
    managedProcesses: normaliseManagedProcesses(root.managed_processes, ctx),
    auth: normaliseAuth(record(root.auth), ctx.dir, ctx.problems, (pattern, path) => regex(pattern, path, ctx)),
    serverHooks: normaliseServerHooks(record(record(root.hooks).server), ctx)
  }
}

function normaliseHooks (value: unknown, at: KeyPath, ctx: Context): HookConfig[] {
  const entries = Array.isArray(value) ? value : value === undefined ? [] : [value]
  return entries.map((item, index) => {
    const hook = record(item)
    const here = Array.isArray(value) ? [...at, index] : at
    return {
      command: text(hook.command, ''),
      args: strings(hook.args),
      timeoutMs: durationMs(hook.timeout, [...here, 'timeout'], '0', ctx),
      reloadConfig: typeof hook.reload_config === 'string' ? resolve(ctx.dir, hook.reload_config) : null
    }
  })
}

function normaliseServerHooks (server: Record<string, unknown>, ctx: Context): ServerHooks {
  const at = (moment: string): KeyPath => ['hooks', 'server', moment]
  return {
    start: normaliseHooks(server.start, at('start'), ctx),
    ready: normaliseHooks(server.ready, at('ready'), ctx),
    idle: normaliseHooks(server.idle, at('idle'), ctx),
    resume: normaliseHooks(server.resume, at('resume'), ctx),
    stop: normaliseHooks(server.stop, at('stop'), ctx)
  }
}

/** Every tenant's hooks: those of hooks.tenant first, then its own (as the Go Navigator runs them). */
function normaliseTenantHooks (defaults: Record<string, unknown>, own: Record<string, unknown>, at: KeyPath, ctx: Context): TenantHooks {
  return {
    start: [...normaliseHooks(defaults.start, ['hooks', 'tenant', 'start'], ctx), ...normaliseHooks(own.start, [...at, 'start'], ctx)],
    stop: [...normaliseHooks(defaults.stop, ['hooks', 'tenant', 'stop'], ctx), ...normaliseHooks(own.stop, [...at, 'stop'], ctx)]
  }
}

function normaliseServer (server: Record<string, unknown>, maintenance: Record<string, unknown>, ctx: Context, authEnabled: boolean): ServerConfig {
  let listen: ListenAddress = { host: DEFAULT_LISTEN_HOST, port: DEFAULT_LISTEN_PORT }
  try {
    listen = parseListen((server.listen ?? DEFAULT_LISTEN_PORT) as number | string)
  } catch (err) {
    ctx.problems.add(['server', 'listen'], (err as Error).message)
  }
  const publicDir = resolve(ctx.dir, text(record(server.static).public_dir, DEFAULT_PUBLIC_DIR))
  const maintenancePage = maintenancePageOf(maintenance, server.maintenance_page, publicDir, ctx.problems) ??
    (typeof server.maintenance_page === 'string' ? resolve(publicDir, server.maintenance_page) : null)
  const { path: healthCheck, response: healthCheckResponse } = normaliseHealthCheck(server.health_check, ctx.problems)
  urlPath(healthCheck ?? undefined, isRecord(server.health_check) ? ['server', 'health_check', 'path'] : ['server', 'health_check'], ctx)
  let idle: IdleConfig | null = null
  if (isRecord(server.idle)) {
    idle = {
      action: text(server.idle.action, DEFAULT_IDLE_ACTION) as IdleAction,
      timeoutMs: durationMs(server.idle.timeout, ['server', 'idle', 'timeout'], DEFAULT_IDLE_TIMEOUT, ctx, Number.MIN_VALUE),
      apiSocket: text(server.idle.api_socket, DEFAULT_IDLE_API_SOCKET)
    }
  }
  const metrics = isRecord(server.metrics) ? normaliseMetrics(server.metrics, listen, healthCheck, ctx) : null
  return {
    listen,
    publicDir,
    allowDotfiles: flag(record(server.static).allow_dotfiles, DEFAULT_ALLOW_DOTFILES),
    staticRules: normaliseStaticRules(server.static, ctx.problems),
    maintenancePage,
    healthCheck,
    healthCheckResponse,
    idle,
    metrics,
    status: isRecord(server.status) ? normaliseStatus(server.status, healthCheck, metrics, ctx) : null,
    hostname: normaliseHostname(server.hostname, ctx.problems),
    rootPath: normaliseRootPath(server.root_path, ctx.problems),
    trustProxy: typeof server.trust_proxy === 'boolean' ? server.trust_proxy : null,
    botDetection: normaliseBotDetection(server.bot_detection) ?? { ...BOT_DETECTION_OFF },
    disableCompression: flag(server.disable_compression, false),
    shutdownTimeoutMs: durationMs(server.shutdown_timeout, ['server', 'shutdown_timeout'], DEFAULT_SHUTDOWN_TIMEOUT, ctx),
    cgiScripts: normaliseCgiScripts(server.cgi_scripts, { dir: ctx.dir, problems: ctx.problems, durationMs: (value, path) => durationMs(value, path, '0', ctx), authEnabled })
  }
}

/** `server.metrics`: its path must be no other of Navigator's own, and its listener not the main one. */
function normaliseMetrics (metrics: Record<string, unknown>, main: ListenAddress, healthCheck: string | null, ctx: Context): MetricsConfig {
  const at = ['server', 'metrics']
  urlPath(metrics.path, [...at, 'path'], ctx)
  const path = text(metrics.path, DEFAULT_METRICS_PATH)
  if (path === healthCheck) ctx.problems.add([...at, 'path'], `${path} is server.health_check already: choose another path for the metrics`)
  let listen: ListenAddress | null = null
  if (metrics.listen !== undefined) {
    try {
      listen = parseListen(metrics.listen as number | string)
      if (listen.port !== 0 && listen.port === main.port) ctx.problems.add([...at, 'listen'], `port ${listen.port} is server.listen's: give the metrics a port of their own, or leave listen out to answer them on the main port`)
    } catch (err) {
      ctx.problems.add([...at, 'listen'], (err as Error).message)
    }
  }
  return { path, listen, allow: addressBlocks(metrics.allow, DEFAULT_METRICS_ALLOW, [...at, 'allow'], ctx) }
}

/** `server.status`: its path and its JSON twin (`<path>.json`) must be none of Navigator's other own paths. */
function normaliseStatus (status: Record<string, unknown>, healthCheck: string | null, metrics: MetricsConfig | null, ctx: Context): StatusConfig {
  const at = ['server', 'status']
  urlPath(status.path, [...at, 'path'], ctx)
  const path = text(status.path, DEFAULT_STATUS_PATH)
  const taken: Array<[string | undefined, string]> = [[healthCheck ?? undefined, 'server.health_check'], [metrics?.path, 'server.metrics.path']]
  for (const [other, key] of taken) {
    if (other === path) ctx.problems.add([...at, 'path'], `${path} is ${key} already: choose another path for the status page`)
    else if (other === `${path}.json`) ctx.problems.add([...at, 'path'], `${other} (the page's JSON) is ${key} already: choose another path for the status page`)
  }
  return { path, allow: addressBlocks(status.allow, DEFAULT_STATUS_ALLOW, [...at, 'allow'], ctx) }
}

/** An `allow` list of address blocks (the default when absent); each bad entry is a problem at its index. */
function addressBlocks (value: unknown, defaults: readonly string[], at: KeyPath, ctx: Context): AddressBlock[] {
  const allow: AddressBlock[] = []
  const given = value === undefined ? defaults : strings(value)
  given.forEach((entry, index) => {
    const block = parseAddressBlock(entry)
    if (typeof block === 'string') ctx.problems.add([...at, index], block)
    else allow.push(block)
  })
  return allow
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const HTTP_METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const REGION = /^[a-z][a-z0-9]*$/
const APP_NAME = /^[a-z0-9][a-z0-9-]*$/
const SAME_SITE: Record<string, SameSite> = { strict: 'Strict', lax: 'Lax', none: 'None' }

function normaliseRoutes (routes: Record<string, unknown>, ctx: Context): RoutesConfig {
  const rewrites: RewriteRule[] = list(routes.rewrites).map((item, index) => {
    const rule = record(item)
    const redirectStatus = rule.redirect === true ? integer(rule.status, DEFAULT_REDIRECT_STATUS) : null
    return { pattern: regex(rule.pattern, ['routes', 'rewrites', index, 'pattern'], ctx), rewrite: text(rule.rewrite, ''), redirectStatus }
  })
  const redirects: RewriteRule[] = list(routes.redirects).map((item, index) => {
    const rule = record(item)
    return { pattern: regex(rule.from, ['routes', 'redirects', index, 'from'], ctx), rewrite: text(rule.to, '/'), redirectStatus: integer(rule.status, DEFAULT_REDIRECT_STATUS) }
  })
  const fly = record(routes.fly)
  const replay = list(fly.replay).map((item, index) => normaliseReplayRule(record(item), ['routes', 'fly', 'replay', index], ctx))
  return {
    redirects,
    rewrites,
    reverseProxies: normaliseReverseProxies(routes.reverse_proxies, ctx.problems, (pattern, path) => regex(pattern, path, ctx)),
    fly: {
      replay,
      stickySessions: normaliseSticky(record(fly.sticky_sessions), ctx),
      maxReplayBody: integer(fly.max_replay_body, DEFAULT_MAX_REPLAY_BODY),
      peerWriteTimeoutMs: durationMs(fly.peer_write_timeout, ['routes', 'fly', 'peer_write_timeout'], DEFAULT_PEER_WRITE_TIMEOUT, ctx, Number.MIN_VALUE)
    }
  }
}

function normaliseReplayRule (rule: Record<string, unknown>, at: KeyPath, ctx: Context): ReplayRule {
  const targets = (['region', 'app', 'machine'] as const).filter((key) => rule[key] !== undefined)
  let target: ReplayTarget = { kind: 'app', app: '' }
  if (targets.length === 0) {
    ctx.problems.add(at, 'a replay rule needs exactly one target: region, app or machine')
  } else if (targets.length > 1) {
    ctx.problems.add([...at, targets[1]], `a replay rule has exactly one target, but this one has ${targets.join(' and ')}`, 'key')
  }
  if (targets[0] === 'region') {
    const given = Array.isArray(rule.region) ? strings(rule.region) : [text(rule.region, '')]
    const regions = given.flatMap((entry) => entry.split(',')).map((entry) => entry.trim().toLowerCase()).filter((entry) => entry !== '')
    const bad = regions.filter((region) => !REGION.test(region))
    if (regions.length === 0 || bad.length > 0) {
      ctx.problems.add([...at, 'region'], `region codes are letters and digits (such as ord or "sjc,any"); bad: ${bad.map((r) => JSON.stringify(r)).join(', ') || 'none given'}`)
    }
    target = { kind: 'region', regions }
  } else if (targets[0] === 'app') {
    const app = text(rule.app, '')
    if (!APP_NAME.test(app)) ctx.problems.add([...at, 'app'], 'a Fly app name is lower-case letters, digits and "-"')
    target = { kind: 'app', app }
  } else if (targets[0] === 'machine') {
    const machine = text(rule.machine, '')
    if (!isValidMachineId(machine)) ctx.problems.add([...at, 'machine'], 'a Machine ID is 1 to 64 characters of a-z, 0-9 and "-"')
    target = { kind: 'machine', machine }
  }
  let methods: string[] | null = null
  if (rule.methods !== undefined) {
    methods = strings(rule.methods).map((method) => method.toUpperCase())
    list(rule.methods).forEach((method, index) => {
      if (typeof method === 'string' && !HTTP_METHOD.test(method)) ctx.problems.add([...at, 'methods', index], `${JSON.stringify(method)} is not an HTTP method`)
    })
  }
  return {
    path: regex(rule.path, [...at, 'path'], ctx),
    target,
    status: integer(rule.status, DEFAULT_REPLAY_STATUS),
    methods
  }
}

function normaliseSticky (sticky: Record<string, unknown>, ctx: Context): StickySessionsConfig {
  const at = ['routes', 'fly', 'sticky_sessions']
  const cookieName = text(sticky.cookie_name, DEFAULT_COOKIE_NAME)
  if (typeof sticky.cookie_name === 'string' && !COOKIE_NAME.test(cookieName)) {
    ctx.problems.add([...at, 'cookie_name'], 'a cookie name may not contain spaces, separators such as ;,=" or control characters')
  }
  const cookiePath = text(sticky.cookie_path, DEFAULT_COOKIE_PATH)
  if (!/^\/[^\s;,\p{Cc}]*$/u.test(cookiePath)) {
    ctx.problems.add([...at, 'cookie_path'], 'must start with "/" and contain no spaces, ";" or ","')
  }
  const paths = strings(sticky.paths)
  list(sticky.paths).forEach((pattern, index) => {
    if (typeof pattern !== 'string') return
    const problem = pathPatternProblem(pattern)
    if (problem !== null) ctx.problems.add([...at, 'paths', index], problem)
  })
  const secrets = typeof sticky.secret === 'string' ? [sticky.secret] : strings(sticky.secret)
  return {
    enabled: flag(sticky.enabled, false),
    cookieName,
    cookieMaxAgeMs: cookieMaxAgeMs(sticky.cookie_max_age, [...at, 'cookie_max_age'], ctx),
    ...cookieAttributes(sticky, at, ctx),
    cookieHttpOnly: flag(sticky.cookie_httponly, DEFAULT_COOKIE_HTTP_ONLY),
    cookiePath,
    headerName: checkedText(sticky.header_name, [...at, 'header_name'], stickyHeaderProblem, ctx)?.toLowerCase() ?? null,
    paths,
    fallbackMode: text(sticky.fallback_mode, 'maintenance') as FallbackMode,
    secrets,
    replayTimeoutMs: durationMs(sticky.replay_timeout, [...at, 'replay_timeout'], DEFAULT_REPLAY_TIMEOUT, ctx, Number.MIN_VALUE),
    replayCache: flag(sticky.replay_cache, DEFAULT_REPLAY_CACHE),
    directProxy: text(sticky.direct_proxy, DEFAULT_DIRECT_PROXY) as DirectProxyMode,
    flycastPort: Number.isInteger(sticky.flycast_port) ? sticky.flycast_port as number : null,
    flycastUrl: checkedOrigin(sticky.flycast_url, [...at, 'flycast_url'], ctx),
    peers: normalisePeers(record(sticky.peers), [...at, 'peers'], ctx),
    debugHeader: flag(sticky.debug_header, DEFAULT_STICKY_DEBUG_HEADER)
  }
}

/** A base URL key (a peer, flycast_url) as its origin; null when absent or wrong (then a problem says why). */
function checkedOrigin (value: unknown, path: KeyPath, ctx: Context): string | null {
  if (typeof value !== 'string') return null
  const origin = peerOrigin(value)
  if (origin === null) ctx.problems.add(path, 'must be an http:// or https:// base URL such as http://127.0.0.1:3001 (no path)')
  return origin
}

/** A string key checked by `problem` (which says why it is wrong, or null); null when absent or wrong. */
function checkedText (value: unknown, path: KeyPath, problem: (text: string) => string | null, ctx: Context): string | null {
  if (typeof value !== 'string') return null
  const message = problem(value)
  if (message === null) return value
  ctx.problems.add(path, message)
  return null
}

/** `cookie_max_age`: 0 is a session cookie; anything else is written as Max-Age in whole seconds, so at least 1s. */
function cookieMaxAgeMs (value: unknown, path: KeyPath, ctx: Context): number {
  const ms = durationMs(value, path, DEFAULT_COOKIE_MAX_AGE, ctx)
  if (ms > 0 && ms < 1000) ctx.problems.add(path, 'must be 0 (a session cookie) or at least 1s')
  return ms
}

/**
 * Secure, SameSite, Domain and Partitioned, with the combinations browsers refuse reported as errors that say what
 * to write instead: SameSite=None without Secure, and Partitioned without Secure and SameSite=None.
 */
function cookieAttributes (sticky: Record<string, unknown>, at: KeyPath, ctx: Context): Pick<StickySessionsConfig, 'cookieSecure' | 'cookieSameSite' | 'cookieDomain' | 'cookiePartitioned'> {
  const cookieSecure = flag(sticky.cookie_secure, DEFAULT_COOKIE_SECURE)
  const cookieSameSite = SAME_SITE[text(sticky.cookie_samesite, DEFAULT_COOKIE_SAMESITE).toLowerCase()] ?? 'Lax'
  if (cookieSameSite === 'None' && !cookieSecure) {
    ctx.problems.add([...at, 'cookie_samesite'], 'SameSite=None needs `cookie_secure: true` (browsers drop such cookies without Secure): add `cookie_secure: true`, or write `cookie_samesite: Lax`')
  }
  const cookiePartitioned = flag(sticky.cookie_partitioned, DEFAULT_COOKIE_PARTITIONED)
  if (cookiePartitioned && (!cookieSecure || cookieSameSite !== 'None')) {
    const missing = [...cookieSecure ? [] : ['`cookie_secure: true`'], ...cookieSameSite === 'None' ? [] : ['`cookie_samesite: None`']]
    ctx.problems.add([...at, 'cookie_partitioned'], `a Partitioned cookie needs Secure and SameSite=None (browsers refuse it otherwise): add ${missing.join(' and ')}, or remove \`cookie_partitioned\``)
  }
  return {
    cookieSecure,
    cookieSameSite,
    cookieDomain: checkedText(sticky.cookie_domain, [...at, 'cookie_domain'], cookieDomainProblem, ctx),
    cookiePartitioned
  }
}

function normalisePeers (given: Record<string, unknown>, at: KeyPath, ctx: Context): Record<string, string> {
  const peers: Record<string, string> = {}
  for (const [id, url] of Object.entries(given)) {
    if (!isValidMachineId(id)) {
      ctx.problems.add([...at, id], `${JSON.stringify(id)} is not a Machine ID (1 to 64 characters of a-z, 0-9 and "-")`, 'key')
    }
    const origin = checkedOrigin(url, [...at, id], ctx)
    if (origin !== null) peers[id] = origin
  }
  return peers
}

function peerOrigin (value: string): string | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return null
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return null
  return url.origin
}

function normaliseApplications (applications: Record<string, unknown>, tenantHooks: Record<string, unknown>, ctx: Context): ApplicationsConfig {
  const at = ['applications']
  urlPath(applications.health_check, [...at, 'health_check'], ctx)
  const config: ApplicationsConfig = {
    env: stringRecord(applications.env),
    command: text(applications.command, DEFAULT_TENANT_COMMAND),
    args: applications.args === undefined ? [...DEFAULT_TENANT_ARGS] : strings(applications.args),
    startPort: integer(applications.start_port, DEFAULT_START_PORT),
    startupTimeoutMs: durationMs(applications.startup_timeout, [...at, 'startup_timeout'], DEFAULT_STARTUP_TIMEOUT, ctx, Number.MIN_VALUE),
    idleTimeoutMs: durationMs(applications.idle_timeout, [...at, 'idle_timeout'], DEFAULT_IDLE_TENANT_TIMEOUT, ctx),
    healthCheck: text(applications.health_check, DEFAULT_TENANT_HEALTH_CHECK),
    tenants: [],
    standaloneServers: [],
    maxSize: integer(applications.max_size, DEFAULT_MAX_SIZE),
    user: optionalText(applications.user),
    group: optionalText(applications.group),
    memoryLimit: memoryLimit(applications.memory_limit, [...at, 'memory_limit'], ctx),
    startDelayMs: durationMs(applications.start_delay, [...at, 'start_delay'], DEFAULT_TENANT_START_DELAY, ctx),
    portEnvVar: text(applications.port_env_var, DEFAULT_PORT_ENV_VAR),
    trackWebSockets: flag(applications.track_websockets, DEFAULT_TRACK_WEBSOCKETS)
  }
  startDelayProblem(config.startDelayMs ?? 0, config.startupTimeoutMs, [...at, 'start_delay'], ctx)

  const names = new Map<string, number>()
  const prefixes = new Map<string, number>()
  list(applications.tenants).forEach((item, index) => {
    const tenant = record(item)
    const here = [...at, 'tenants', index]
    const name = text(tenant.name, '')
    const earlierName = names.get(name)
    if (name !== '' && earlierName !== undefined) {
      ctx.problems.add([...here, 'name'], `duplicate tenant name \`${name}\` (also applications.tenants.${earlierName}.name)`)
    } else if (name !== '') {
      names.set(name, index)
    }
    const rawPath = text(tenant.path, '')
    let path = rawPath
    if (typeof tenant.path === 'string') {
      if (!/^\/[^\s?#]*$/.test(rawPath)) {
        ctx.problems.add([...here, 'path'], 'a tenant path must start with "/" (no spaces, "?" or "#")')
      }
      path = rawPath.length > 1 ? rawPath.replace(/\/+$/, '') || '/' : rawPath
      const earlierPath = prefixes.get(path)
      if (earlierPath !== undefined) {
        ctx.problems.add([...here, 'path'], `duplicate tenant path \`${path}\` (also applications.tenants.${earlierPath}.path)`)
      } else {
        prefixes.set(path, index)
      }
    }
    config.tenants.push({
      name,
      path,
      workingDir: resolve(ctx.dir, text(tenant.working_dir, '.')),
      var: stringRecord(tenant.var),
      start: text(tenant.start, 'lazy') as StartMode,
      env: stringRecord(tenant.env),
      command: typeof tenant.command === 'string' ? tenant.command : null,
      args: Array.isArray(tenant.args) ? strings(tenant.args) : null,
      hooks: normaliseTenantHooks(tenantHooks, record(tenant.hooks), [...here, 'hooks'], ctx),
      publicDir: typeof tenant.public_dir === 'string' ? resolve(ctx.dir, tenant.public_dir) : null,
      botDetection: normaliseBotDetection(tenant.bot_detection),
      ...normaliseTenantOverrides(tenant, here, config, ctx)
    })
  })

  const standaloneNames = new Map<string, number>()
  list(applications.standalone_servers).forEach((item, index) => {
    const server = record(item)
    const here = [...at, 'standalone_servers', index]
    const name = text(server.name, '')
    const earlier = standaloneNames.get(name)
    if (name !== '' && earlier !== undefined) {
      ctx.problems.add([...here, 'name'], `duplicate standalone server name \`${name}\` (also applications.standalone_servers.${earlier}.name)`)
    } else if (name !== '') {
      standaloneNames.set(name, index)
    }
    const matchPath = text(server.match_path, '')
    if (typeof server.match_path === 'string') {
      const problem = pathPatternProblem(matchPath)
      if (problem !== null) ctx.problems.add([...here, 'match_path'], problem)
    }
    const standalone: StandaloneServerConfig = {
      name,
      matchPath,
      command: text(server.command, ''),
      args: strings(server.args),
      workingDir: resolve(ctx.dir, text(server.working_dir, '.')),
      port: integer(server.port, 0),
      env: stringRecord(server.env)
    }
    config.standaloneServers.push(standalone)
  })

  checkTenantReferences(config, ctx)
  return config
}

function startDelayProblem (startDelayMs: number, startupTimeoutMs: number, at: KeyPath, ctx: Context): void {
  if (startDelayMs > 0 && startDelayMs >= startupTimeoutMs) {
    ctx.problems.add(at, 'applications.start_delay must be shorter than the startup timeout, or the tenant is never ready in time: shorten start_delay or lengthen startup_timeout')
  }
}

const optionalText = (value: unknown): string | null => (typeof value === 'string' ? value : null)

function memoryLimit (value: unknown, path: KeyPath, ctx: Context): number | null {
  const bytes = typeof value === 'number' ? value : typeof value === 'string' ? parseMemorySize(value) : null
  if (bytes === 0) ctx.problems.add(path, 'must be more than 0 (a limit of 0 would kill the tenant at once): write a size such as 512M, or leave memory_limit out')
  return bytes
}

/** A tenant's own health_check, startup_timeout, track_websockets, memory_limit, user and group (null: the applications' value). */
function normaliseTenantOverrides (tenant: Record<string, unknown>, here: KeyPath, applications: ApplicationsConfig, ctx: Context): Required<Pick<TenantConfig, 'healthCheck' | 'startupTimeoutMs' | 'trackWebSockets' | 'memoryLimit' | 'user' | 'group'>> {
  urlPath(tenant.health_check, [...here, 'health_check'], ctx)
  const startupTimeoutMs = tenant.startup_timeout === undefined ? null : durationMs(tenant.startup_timeout, [...here, 'startup_timeout'], DEFAULT_STARTUP_TIMEOUT, ctx, Number.MIN_VALUE)
  if (startupTimeoutMs !== null) startDelayProblem(applications.startDelayMs ?? 0, startupTimeoutMs, [...here, 'startup_timeout'], ctx)
  return {
    healthCheck: optionalText(tenant.health_check),
    startupTimeoutMs,
    trackWebSockets: typeof tenant.track_websockets === 'boolean' ? tenant.track_websockets : null,
    memoryLimit: memoryLimit(tenant.memory_limit, [...here, 'memory_limit'], ctx),
    user: optionalText(tenant.user),
    group: optionalText(tenant.group)
  }
}

/** `managed_processes`: unique names; `start_delay` a Go duration or (as the Go docs write it) whole seconds. */
function normaliseManagedProcesses (value: unknown, ctx: Context): ManagedProcessConfig[] {
  const names = new Map<string, number>()
  return list(value).map((item, index) => {
    const entry = record(item)
    const here = ['managed_processes', index]
    const name = text(entry.name, '')
    const earlier = names.get(name)
    if (name !== '' && earlier !== undefined) {
      ctx.problems.add([...here, 'name'], `duplicate managed process name \`${name}\` (also managed_processes.${earlier}.name)`)
    } else if (name !== '') {
      names.set(name, index)
    }
    const delay = entry.start_delay
    return {
      name,
      command: text(entry.command, ''),
      args: strings(entry.args),
      workingDir: resolve(ctx.dir, text(entry.working_dir, '.')),
      env: stringRecord(entry.env),
      autoRestart: flag(entry.auto_restart, DEFAULT_MANAGED_AUTO_RESTART),
      startDelayMs: Number.isInteger(delay) ? (delay as number) * 1000 : durationMs(delay, [...here, 'start_delay'], DEFAULT_MANAGED_START_DELAY, ctx)
    }
  })
}

// Every ${name} a tenant's process will see must resolve from its var, PORT or the environment.
function checkTenantReferences (applications: ApplicationsConfig, ctx: Context): void {
  const shared = new Map<string, { path: KeyPath, name: string, tenants: string[] }>()
  const sharedMissing = (path: KeyPath, name: string, tenant: string): void => {
    const key = `${path.join('.')}\u0000${name}`
    const entry = shared.get(key) ?? { path, name, tenants: [] }
    entry.tenants.push(tenant)
    shared.set(key, entry)
  }
  applications.tenants.forEach((tenant, index) => {
    const lookup = tenantLookup(tenant, 'PORT', ctx.env)
    const label = tenant.name === '' ? `#${index}` : tenant.name
    const check = (value: string, path: KeyPath, isShared: boolean): void => {
      for (const name of referencedNames(value)) {
        if (lookup(name) !== undefined) continue
        if (isShared) sharedMissing(path, name, label)
        else ctx.problems.add(path, `\${${name}} is not in this tenant's var, not PORT and not set in the environment`)
      }
    }
    const here = ['applications', 'tenants', index]
    for (const [key, value] of Object.entries(applications.env)) check(value, ['applications', 'env', key], true)
    for (const [key, value] of Object.entries(tenant.env)) check(value, [...here, 'env', key], false)
    if (tenant.command === null) check(applications.command, ['applications', 'command'], true)
    else check(tenant.command, [...here, 'command'], false)
    if (tenant.args === null) applications.args.forEach((arg, i) => check(arg, ['applications', 'args', i], true))
    else tenant.args.forEach((arg, i) => check(arg, [...here, 'args', i], false))
  })
  for (const { path, name, tenants } of shared.values()) {
    ctx.problems.add(path, `\${${name}} is not defined for tenant${tenants.length === 1 ? '' : 's'} ${tenants.join(', ')} (not in var, not PORT, not set in the environment)`)
  }
}
