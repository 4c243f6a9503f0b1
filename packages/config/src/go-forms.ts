// The Go Navigator's spellings of the configuration, turned into this project's before anything else reads the
// file. A file written for the Go Navigator loads with the same meaning: its current forms silently, its older forms
// (which its own examples still use) with a one-line deprecation warning that names the key to write instead. Keys
// that the Go loader itself ignores stay errors here, with a message that says so.
//
// The translation works on the parsed YAML value, before `${NAME}` substitution and the schema's check, so every
// later pass sees one spelling. Each moved value keeps its origin: a problem found later at the new key path is
// reported at the key the file really has (see ProblemCollector.setOrigins), and `navigator --check --print` prints
// the translated file.

import type { KeyPath, ProblemCollector } from './problems.js'

/** Where a value of the translated config came from in the file. */
export interface Origin {
  canonical: KeyPath
  original: KeyPath
  /** A value derived where this project's spelling derives it too (a tenant's name and path), not a Go spelling. */
  derived?: boolean
}

export interface GoForms {
  /** The config in this project's spelling. */
  value: unknown
  origins: Origin[]
  /** Whether the file uses a spelling of the Go Navigator's own (then unknown keys are said to have done nothing there). */
  goSpelled: boolean
}

type Map = Record<string, unknown>

function isMap (value: unknown): value is Map {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Keys the Go Navigator's loader does not read (it ignores unknown keys without a word), which older Go examples
 * still carry: each is an error here that says where the setting lives.
 */
export const IGNORED_BY_GO: Readonly<Record<string, string>> = {
  'server.public_dir': 'server.static.public_dir',
  'server.try_files': 'server.static.try_files',
  'server.allowed_extensions': 'server.static.allowed_extensions',
  'server.cache_control': 'server.static.cache_control',
  'server.named_hosts': 'tenant `path`s (there is no host-based routing)',
  'server.authentication': 'the top-level `auth` section (`enabled`, `htpasswd`)',
  'server.auth_exclude': '`auth.public_paths`',
  'server.rewrites': '`routes.rewrites` (`pattern`, `rewrite`) or `routes.redirects` (`from`, `to`)',
  'server.sticky_sessions': '`routes.fly.sticky_sessions`',
  'applications.global_env': '`applications.env`',
  'routes.fly_replay': '`routes.fly.replay`'
}

/** The Go names of duration keys that older Go examples wrote as a bare number of seconds. */
const DURATION_KEYS = new Set(['timeout', 'idle_timeout', 'startup_timeout', 'start_delay', 'shutdown_timeout',
  'replay_timeout', 'peer_write_timeout', 'cookie_max_age', 'max_age'])
/** Maps whose keys are names chosen by the user, not config keys: never looked into for durations. */
const FREE_MAPS = new Set(['env', 'var', 'headers', 'response_headers', 'peers', 'args'])

/** Framework names the Go Navigator's older examples used as `framework: <name>`, with what they ran. */
const BUILT_IN_FRAMEWORKS: Readonly<Record<string, { command: string, args: string[] }>> = {
  rails: { command: 'bin/rails', args: ['server', '-b', '127.0.0.1', '-p', '${PORT}'] }
}

class Translation {
  readonly origins: Origin[] = []

  constructor (readonly problems: ProblemCollector, readonly warnings: ProblemCollector) {}

  /** Moves `from[key]` to `to[toKey]` (paths for messages); refuses when both spellings are given. */
  move (from: Map, key: string, fromPath: KeyPath, to: Map, toKey: string, toPath: KeyPath, deprecated = false): void {
    if (!Object.hasOwn(from, key)) return
    const original = [...fromPath, key]
    const canonical = [...toPath, toKey]
    if (Object.hasOwn(to, toKey) && to !== from) {
      this.problems.add(original, `\`${original.join('.')}\` and \`${canonical.join('.')}\` are the same setting: keep one of them`, 'key')
      delete from[key]
      return
    }
    const value = from[key]
    delete from[key]
    to[toKey] = value
    this.origins.push({ canonical, original })
    if (deprecated) this.deprecated(original, `write \`${canonical.join('.')}\` instead`)
  }

  /** A one-line deprecation warning at `path`: `advice` says what to write instead. */
  deprecated (path: KeyPath, advice: string): void {
    this.warnings.add(path, `deprecated Go Navigator form: ${advice}`, 'key')
  }

  problemAt (path: KeyPath, message: string): void {
    this.problems.add(path, message)
  }

  /** Reports whatever is left in a Go mapping once its known keys were moved out, then drops the mapping. */
  leftovers (map: Map, path: KeyPath, known: string[]): void {
    for (const key of Object.keys(map)) {
      this.problems.add([...path, key], `unknown key \`${key}\`; valid keys here: ${known.join(', ')}`, 'key')
    }
  }
}

/** Translates the Go Navigator's spellings in `raw` (the parsed file, not yet substituted). */
export function translateGoForms (raw: unknown, problems: ProblemCollector, warnings: ProblemCollector): GoForms {
  if (!isMap(raw)) return { value: raw, origins: [], goSpelled: false }
  const config: Map = { ...raw }
  const t = new Translation(problems, warnings)
  // Live: a problem or warning at a key moved so far is reported where the file has it.
  problems.setOrigins(t.origins)
  warnings.setOrigins(t.origins)
  for (const [dotted, instead] of Object.entries(IGNORED_BY_GO)) {
    const [section, key] = dotted.split('.')
    const parent = config[section]
    if (!isMap(parent) || !Object.hasOwn(parent, key)) continue
    problems.add([section, key], `\`${dotted}\` is not read by the Go Navigator either (it ignores the key): write ${instead.startsWith('`') || instead.includes(' ') ? instead : `\`${instead}\``} instead`, 'key')
    const copy = { ...parent }
    delete copy[key]
    config[section] = copy
  }
  if (isMap(config.routes)) config.routes = translateRoutes({ ...config.routes }, t)
  if (isMap(config.applications)) translateApplications(config, t)
  bareDurations(config, [], t)
  const goSpelled = t.origins.some((origin) => origin.derived !== true) || warnings.size > 0
  if (goSpelled && !Object.hasOwn(config, 'cable')) {
    warnings.add([], 'this file is written for the Go Navigator, which runs its TurboCable hub at /cable unless told otherwise; ' +
      'here the hub is off by default: add `cable: { enabled: true }` to keep it, or `cable: { enabled: false }` to say you do not use it')
  }
  return { value: config, origins: t.origins, goSpelled }
}

/** `routes.rewrites`: `{from, to}` and `{pattern, replacement}` are `{pattern, rewrite}`. */
function translateRoutes (routes: Map, t: Translation): Map {
  if (!Array.isArray(routes.rewrites)) return routes
  routes.rewrites = routes.rewrites.map((item, index) => {
    if (!isMap(item)) return item
    const rule = { ...item }
    const at = ['routes', 'rewrites', index]
    t.move(rule, 'from', at, rule, 'pattern', at)
    t.move(rule, 'to', at, rule, 'rewrite', at)
    t.move(rule, 'replacement', at, rule, 'rewrite', at)
    return rule
  })
  return routes
}

function translateApplications (config: Map, t: Translation): void {
  const apps: Map = { ...config.applications as Map }
  config.applications = apps
  const at = ['applications']
  if (isMap(apps.pools)) {
    const pools: Map = { ...apps.pools }
    const here = [...at, 'pools']
    t.move(pools, 'max_size', here, apps, 'max_size', at)
    t.move(pools, 'timeout', here, apps, 'idle_timeout', at)
    t.move(pools, 'start_port', here, apps, 'start_port', at)
    t.move(pools, 'default_memory_limit', here, apps, 'memory_limit', at)
    t.move(pools, 'user', here, apps, 'user', at)
    t.move(pools, 'group', here, apps, 'group', at)
    t.leftovers(pools, here, ['max_size', 'timeout', 'start_port', 'default_memory_limit', 'user', 'group'])
    delete apps.pools
  }
  if (isMap(apps.hooks)) mergeApplicationHooks(config, apps, t)
  const named = frameworkMaps(apps, t)
  const appDirectory = translateFramework(apps, named, t)
  if (Array.isArray(apps.tenants)) {
    apps.tenants = apps.tenants.map((tenant, index) => isMap(tenant)
      ? translateTenant({ ...tenant }, [...at, 'tenants', index], { appDirectory, named, only: (apps.tenants as unknown[]).length === 1, config }, t)
      : tenant)
  }
  replacePortReferences(apps, at, t)
}

/**
 * `applications.hooks` (the Go form) are hooks of every tenant, like `hooks.tenant`: a file with both runs the
 * hooks of `hooks.tenant` first, then those of `applications.hooks`.
 */
function mergeApplicationHooks (config: Map, apps: Map, t: Translation): void {
  const own = apps.hooks as Map
  delete apps.hooks
  const hooks: Map = isMap(config.hooks) ? { ...config.hooks } : {}
  const tenant: Map = isMap(hooks.tenant) ? { ...hooks.tenant } : {}
  for (const [moment, value] of Object.entries(own)) {
    const original = ['applications', 'hooks', moment]
    const before = tenant[moment] === undefined ? [] : Array.isArray(tenant[moment]) ? tenant[moment] : [tenant[moment]]
    const added = Array.isArray(value) ? value : [value]
    tenant[moment] = [...before, ...added]
    if (!Array.isArray(value)) {
      t.origins.push({ canonical: ['hooks', 'tenant', moment, before.length], original })
    } else {
      added.forEach((_, index) => { t.origins.push({ canonical: ['hooks', 'tenant', moment, before.length + index], original: [...original, index] }) })
    }
  }
  hooks.tenant = tenant
  config.hooks = hooks
}

/**
 * `applications.framework`: the current object form (`command`, `args`, `app_directory`, `port_env_var`,
 * `start_delay`), the older object form (`runtime_executable`, `server_executable`, `server_args`) or the older bare
 * name. Returns `app_directory`, which becomes each tenant's default `working_dir`.
 */
function translateFramework (apps: Map, named: FrameworkMaps, t: Translation): { value: unknown, path: KeyPath } | null {
  const at = ['applications']
  const here = [...at, 'framework']
  const framework = apps.framework
  if (typeof framework === 'string') {
    delete apps.framework
    const builtIn = BUILT_IN_FRAMEWORKS[framework]
    if (Object.hasOwn(named.runtime, framework) || Object.hasOwn(named.server, framework)) {
      t.deprecated(here, `write \`framework: ${framework}\` on each tenant (it picks applications.runtime, server and args) or \`applications.command\` and \`applications.args\``)
      named.fallback = framework
    } else if (builtIn !== undefined) {
      t.deprecated(here, 'write `applications.command` and `applications.args` instead')
      if (!Object.hasOwn(apps, 'command')) apps.command = builtIn.command
      if (!Object.hasOwn(apps, 'args')) apps.args = [...builtIn.args]
    } else {
      t.problemAt(here, `framework \`${framework}\` has no built-in command here: write \`applications.command\` and \`applications.args\``)
    }
    return null
  }
  if (!isMap(framework)) return null
  const fw: Map = { ...framework }
  delete apps.framework
  t.move(fw, 'command', here, apps, 'command', at)
  t.move(fw, 'args', here, apps, 'args', at)
  t.move(fw, 'port_env_var', here, apps, 'port_env_var', at)
  t.move(fw, 'start_delay', here, apps, 'start_delay', at)
  if (Object.hasOwn(fw, 'runtime_executable') || Object.hasOwn(fw, 'server_executable') || Object.hasOwn(fw, 'server_args')) {
    const runtime = fw.runtime_executable
    const server = fw.server_executable
    const serverArgs = Array.isArray(fw.server_args) ? fw.server_args : []
    for (const key of ['runtime_executable', 'server_executable', 'server_args']) {
      if (Object.hasOwn(fw, key)) t.deprecated([...here, key], `write \`applications.${key === 'server_args' ? 'args' : 'command'}\` instead (the command is the runtime, its arguments the server and server_args)`)
    }
    const command = runtime ?? server
    const args = runtime === undefined ? serverArgs : [...server === undefined ? [] : [server], ...serverArgs]
    if (command !== undefined && !Object.hasOwn(apps, 'command')) {
      apps.command = command
      t.origins.push({ canonical: [...at, 'command'], original: [...here, runtime === undefined ? 'server_executable' : 'runtime_executable'] })
    }
    if (!Object.hasOwn(apps, 'args')) {
      apps.args = args
      const offset = args.length - serverArgs.length
      if (offset === 1) t.origins.push({ canonical: [...at, 'args', 0], original: [...here, 'server_executable'] })
      serverArgs.forEach((_, index) => { t.origins.push({ canonical: [...at, 'args', index + offset], original: [...here, 'server_args', index] }) })
    }
    delete fw.runtime_executable
    delete fw.server_executable
    delete fw.server_args
  }
  const appDirectory = Object.hasOwn(fw, 'app_directory') ? { value: fw.app_directory, path: [...here, 'app_directory'] } : null
  delete fw.app_directory
  t.leftovers(fw, here, ['command', 'args', 'app_directory', 'port_env_var', 'start_delay'])
  return appDirectory
}

interface FrameworkMaps {
  runtime: Map
  server: Map
  args: Map
  fallback: string | null
}

/** `applications.runtime`, `server` and `args`: per framework name, what a tenant with `framework: <name>` runs. */
function frameworkMaps (apps: Map, t: Translation): FrameworkMaps {
  const maps: FrameworkMaps = { runtime: {}, server: {}, args: {}, fallback: null }
  for (const key of ['runtime', 'server', 'args'] as const) {
    const value = apps[key]
    if (key === 'args' && Array.isArray(value)) continue
    if (!Object.hasOwn(apps, key)) continue
    if (isMap(value)) maps[key] = value
    else t.problemAt(['applications', key], `applications.${key} is a map from a framework name to ${key === 'args' ? 'its arguments' : 'a command'} (\`${key}: { rails: ${key === 'args' ? '[server]' : 'bin/rails'} }\`)`)
    delete apps[key]
  }
  return maps
}

interface TenantContext {
  appDirectory: { value: unknown, path: KeyPath } | null
  named: FrameworkMaps
  only: boolean
  config: Map
}

/** A tenant in the Go form: `root`, `framework`, `runtime`, `server`, Go `args`; `name` and `path` derived. */
function translateTenant (tenant: Map, at: KeyPath, ctx: TenantContext, t: Translation): Map {
  t.move(tenant, 'root', at, tenant, 'working_dir', at)
  if (!Object.hasOwn(tenant, 'working_dir') && ctx.appDirectory !== null) {
    tenant.working_dir = ctx.appDirectory.value
    t.origins.push({ canonical: [...at, 'working_dir'], original: ctx.appDirectory.path })
  }
  const framework = typeof tenant.framework === 'string' ? tenant.framework : ctx.named.fallback
  const goLaunch = Object.hasOwn(tenant, 'framework') || Object.hasOwn(tenant, 'runtime') || Object.hasOwn(tenant, 'server') || (framework !== null && !Object.hasOwn(tenant, 'command'))
  if (goLaunch) {
    const runtime = tenant.runtime ?? (framework === null ? undefined : ctx.named.runtime[framework])
    const server = tenant.server ?? (framework === null ? undefined : ctx.named.server[framework])
    const args = Array.isArray(tenant.args) ? tenant.args : (framework === null ? undefined : ctx.named.args[framework])
    if (framework !== null && tenant.runtime === undefined && tenant.server === undefined && runtime === undefined && server === undefined) {
      t.problemAt([...at, Object.hasOwn(tenant, 'framework') ? 'framework' : 'path'], `framework \`${framework}\` is not in applications.runtime or applications.server: add it there, or give the tenant \`command\` and \`args\``)
    }
    const command = runtime ?? server
    if (command !== undefined) {
      tenant.command = command
      t.origins.push({ canonical: [...at, 'command'], original: [...at, tenant.runtime !== undefined ? 'runtime' : tenant.server !== undefined ? 'server' : 'framework'] })
      tenant.args = [...runtime !== undefined && server !== undefined ? [server] : [], ...Array.isArray(args) ? args : []]
      t.origins.push({ canonical: [...at, 'args'], original: [...at, Array.isArray(tenant.args) && Object.hasOwn(tenant, 'args') ? 'args' : 'framework'] })
    }
    delete tenant.framework
    delete tenant.runtime
    delete tenant.server
  }
  if (!Object.hasOwn(tenant, 'path') && ctx.only) {
    tenant.path = '/'
    t.origins.push({ canonical: [...at, 'path'], original: at, derived: true })
  }
  if (!Object.hasOwn(tenant, 'name') && typeof tenant.path === 'string') {
    tenant.name = tenantNameFromPath(tenant.path, rootPathOf(ctx.config))
    t.origins.push({ canonical: [...at, 'name'], original: [...at, 'path'], derived: true })
  }
  replacePortReferences(tenant, at, t)
  return tenant
}

function rootPathOf (config: Map): string {
  const server = config.server
  return isMap(server) && typeof server.root_path === 'string' ? server.root_path : ''
}

/**
 * A tenant's name when the file gives none, as the Go Navigator derives it: the path without the server's
 * `root_path` and without its outer slashes (`/showcase/2025/boston/` under `/showcase` is `2025/boston`); `root`
 * for the tenant at `/`.
 */
export function tenantNameFromPath (path: string, rootPath = ''): string {
  const root = rootPath.replace(/\/+$/, '')
  const inside = root !== '' && (path === root || path.startsWith(root + '/')) ? path.slice(root.length) : path
  const name = inside.replace(/^\/+|\/+$/g, '')
  return name === '' ? 'root' : name
}

/**
 * `${port}` (the Go Navigator's name for the tenant's port) is `${PORT}` here; `{{port}}`, its older spelling, too,
 * with a warning. A tenant whose `var` defines `port` keeps its own meaning.
 */
function replacePortReferences (owner: Map, at: KeyPath, t: Translation): void {
  const ownPort = isMap(owner.var) && Object.hasOwn(owner.var, 'port')
  const fix = (value: unknown, path: KeyPath): unknown => {
    if (typeof value !== 'string') return value
    let out = value
    if (out.includes('{{port}}')) {
      t.deprecated(path, 'write `${PORT}` (or `${port}`) instead of `{{port}}`')
      out = out.replaceAll('{{port}}', '${PORT}')
    }
    return ownPort ? out : out.replaceAll('${port}', '${PORT}')
  }
  if (typeof owner.command === 'string') owner.command = fix(owner.command, [...at, 'command'])
  if (Array.isArray(owner.args)) owner.args = owner.args.map((arg, index) => fix(arg, [...at, 'args', index]))
  if (isMap(owner.env)) {
    owner.env = Object.fromEntries(Object.entries(owner.env).map(([key, value]) => [key, fix(value, [...at, 'env', key])]))
  }
}

/** Durations written as a bare number of seconds (older Go examples): the same duration, with a warning. */
function bareDurations (value: unknown, path: KeyPath, t: Translation): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => { bareDurations(item, [...path, index], t) })
    return
  }
  if (!isMap(value)) return
  for (const [key, child] of Object.entries(value)) {
    if (FREE_MAPS.has(key)) continue
    const durationKey = DURATION_KEYS.has(key) || (key === 'default' && path[path.length - 1] === 'cache_control')
    if (durationKey && typeof child === 'number' && Number.isInteger(child) && child > 0) {
      value[key] = `${child}s`
      t.deprecated([...path, key], `write the duration with its unit: \`${child}s\``)
    } else {
      bareDurations(child, [...path, key], t)
    }
  }
}

const HOOK = ['command', 'args[]', 'timeout', 'reload_config']
const hookPaths = (prefix: string): string[] => HOOK.map((key) => `${prefix}[].${key}`)
const TENANT_HOOKS = ['start', 'stop']

/**
 * Every key path the Go Navigator's loader reads (its YAML types at commit 68f6844); `[]` is a list item. All of
 * them load here with the same meaning, except `logging.vector.*` (Vector is not built in: a config error says what
 * to do instead).
 */
export const GO_KEY_PATHS: readonly string[] = [
  'cable.enabled', 'cable.path', 'cable.broadcast_path',
  'auth.enabled', 'auth.realm', 'auth.htpasswd', 'auth.public_paths[]', 'auth.auth_patterns[].pattern', 'auth.auth_patterns[].action',
  'server.listen', 'server.hostname', 'server.root_path', 'server.trust_proxy',
  ...['path', 'script', 'method', 'user', 'group', 'allowed_users[]', 'env.*', 'reload_config', 'timeout'].map((key) => `server.cgi_scripts[].${key}`),
  'server.static.public_dir', 'server.static.allowed_extensions[]', 'server.static.try_files[]', 'server.static.normalize_trailing_slashes',
  'server.static.cache_control.default', 'server.static.cache_control.default_immutable',
  'server.static.cache_control.overrides[].path', 'server.static.cache_control.overrides[].max_age', 'server.static.cache_control.overrides[].immutable',
  'server.idle.action', 'server.idle.timeout',
  'server.health_check.path', 'server.health_check.response.status', 'server.health_check.response.body', 'server.health_check.response.headers.*',
  'routes.redirects[].from', 'routes.redirects[].to', 'routes.rewrites[].from', 'routes.rewrites[].to',
  ...['name', 'path', 'prefix', 'target', 'strip_path', 'headers.*', 'response_headers.*', 'websocket'].map((key) => `routes.reverse_proxies[].${key}`),
  ...['enabled', 'cookie_name', 'cookie_max_age', 'cookie_secure', 'cookie_httponly', 'cookie_samesite', 'cookie_path', 'paths[]'].map((key) => `routes.fly.sticky_sessions.${key}`),
  'routes.fly.replay[].path', 'routes.fly.replay[].app', 'routes.fly.replay[].region', 'routes.fly.replay[].status',
  ...['max_size', 'timeout', 'start_port', 'default_memory_limit', 'user', 'group'].map((key) => `applications.pools.${key}`),
  ...['command', 'args[]', 'app_directory', 'port_env_var', 'start_delay'].map((key) => `applications.framework.${key}`),
  ...['path', 'root', 'public_dir', 'env.*', 'framework', 'runtime', 'server', 'args[]', 'var.*', 'health_check', 'startup_timeout',
    'track_websockets', 'memory_limit', 'user', 'group'].map((key) => `applications.tenants[].${key}`),
  ...TENANT_HOOKS.flatMap((moment) => hookPaths(`applications.tenants[].hooks.${moment}`)),
  'applications.env.*', 'applications.runtime.*', 'applications.server.*', 'applications.args.*[]',
  'applications.health_check', 'applications.startup_timeout', 'applications.track_websockets',
  ...TENANT_HOOKS.flatMap((moment) => hookPaths(`applications.hooks.${moment}`)),
  ...['name', 'command', 'args[]', 'working_dir', 'env.*', 'auto_restart', 'start_delay'].map((key) => `managed_processes[].${key}`),
  'logging.format', 'logging.file', 'logging.vector.enabled', 'logging.vector.socket', 'logging.vector.config',
  ...['start', 'ready', 'resume', 'idle', 'stop'].flatMap((moment) => hookPaths(`hooks.server.${moment}`)),
  ...TENANT_HOOKS.flatMap((moment) => hookPaths(`hooks.tenant.${moment}`)),
  'maintenance.enabled', 'maintenance.page'
]
