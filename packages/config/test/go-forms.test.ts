import { test } from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { canonicalYaml, loadConfig, parseConfig } from '../src/load.js'
import { GO_KEY_PATHS, tenantNameFromPath } from '../src/go-forms.js'
import { ConfigError } from '../src/problems.js'
import type { ConfigProblem } from '../src/types.js'

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')
const everyKey = join(fixtures, 'go-every-key', 'navigator.yml')
const docs = join(fixtures, 'go-docs')

/** The key paths of a parsed YAML value, in the form of GO_KEY_PATHS (`[]` for list items, `.*` for free maps). */
function keyPaths (value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) {
    const paths = value.flatMap((item) => keyPaths(item, `${prefix}[]`))
    return paths.length === 0 ? [`${prefix}[]`] : paths
  }
  if (typeof value !== 'object' || value === null) return [prefix]
  return Object.entries(value).flatMap(([key, child]) => {
    const here = prefix === '' ? key : `${prefix}.${key}`
    const free = GO_KEY_PATHS.some((path) => path === `${here}.*` || path.startsWith(`${here}.*[]`))
    if (free) {
      return Object.values(child as object).flatMap((item) => keyPaths(item, `${here}.*`))
    }
    return keyPaths(child, here)
  })
}

const GO_PATHS = new Set(GO_KEY_PATHS)
const goReads = (path: string): boolean => GO_PATHS.has(path) || GO_PATHS.has(`${path}[]`)

/** An environment in which every `${NAME}` of `text` is set. */
function environmentFor (text: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const match of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) env[match[1]] ??= 'x'
  return env
}

function problemsOf (fn: () => unknown): ConfigProblem[] | null {
  try {
    fn()
    return null
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

test('the every-key fixture uses every key path of the Go types (but logging.vector)', async (t) => {
  const used = new Set(keyPaths(parse(readFileSync(everyKey, 'utf8'))))
  const missing = GO_KEY_PATHS.filter((path) => !path.startsWith('logging.vector.') && !used.has(path))
  t.same(missing, [], 'no Go key path left out')
  const extra = [...used].filter((path) => !goReads(path))
  t.same(extra, [], 'and nothing the Go loader does not read')
})

test('a config that uses every Go key path loads with the Go meaning, launch paths checked', async (t) => {
  const config = await loadConfig(everyKey, { launchPaths: true, env: { PATH: process.env.PATH } })
  t.same(config.warnings.map((warning) => `${warning.path}: ${warning.message}`),
    ['hooks.server.stop.0.reload_config: reload_config does nothing in a stop hook: Navigator is stopping; remove it'],
    'current Go forms load without a deprecation warning; one key of the Go types is said to do nothing')
  const apps = config.applications
  t.equal(apps.startPort, 4000, 'pools.start_port')
  t.equal(apps.idleTimeoutMs, 5 * 60_000, 'pools.timeout is the idle timeout')
  t.equal(apps.startupTimeoutMs, 30_000)
  t.same(apps.tenants.map((tenant) => tenant.name), ['tenant1', 'tenant2', 'tenant3'], 'names derived from the paths')
  t.same(apps.tenants.map((tenant) => tenant.path), ['/tenant1', '/tenant2', '/tenant3'])
  const appDir = join(fixtures, 'go-every-key', 'app')
  t.same(apps.tenants.map((tenant) => tenant.workingDir), [appDir, appDir, appDir], 'app_directory is the default, root overrides it')
  t.equal(apps.command, 'node', 'framework.command')
  t.same(apps.args, ['server.mjs', '${PORT}'], 'framework.args, ${port} is the port')
  t.same([apps.tenants[1].command, apps.tenants[1].args], ['node', ['server.mjs', '${PORT}']], 'framework: node picks applications.runtime/server/args')
  t.same([apps.tenants[2].command, apps.tenants[2].args], ['node', ['server.mjs', '${PORT}']], 'runtime + server + args')
  t.equal(apps.tenants[0].command, null, 'a tenant without a framework runs applications.command')
  t.same(apps.tenants[1].hooks.start.map((hook) => hook.args.at(-1)), ['every-tenant-start', 'tenant-start', 'tenant2-start'], 'hooks.tenant, then applications.hooks, then its own')
  t.same(config.routes.rewrites.map((rule) => [rule.pattern.source, rule.rewrite]), [['^\\/legacy\\/(.*)$', '/tenant1/$1']], 'rewrites {from, to}')
  t.equal(config.routes.redirects.length, 1)
  t.equal(config.routes.reverseProxies.length, 2)
  t.equal(config.managedProcesses[0].name, 'worker')
})

test('applications.hooks and hooks.tenant are both hooks of every tenant, hooks.tenant first', async (t) => {
  const config = parseConfig([
    'applications:',
    '  hooks:',
    '    start: [{ command: b }]',
    '  tenants: [{ path: /a/ }]',
    'hooks:',
    '  tenant:',
    '    start: { command: a }'
  ].join('\n'), { dir: '/srv', env: {} })
  t.same(config.applications.tenants[0].hooks.start.map((hook) => hook.command), ['a', 'b'])
})

test('the older Go forms load, each with a one-line warning naming the key to write', async (t) => {
  const config = parseConfig([
    'applications:',
    '  framework:',
    '    runtime_executable: ruby',
    '    server_executable: bin/rails',
    '    server_args: ["-p", "{{port}}"]',
    '  pools:',
    '    timeout: 300',
    '  tenants:',
    '    - path: /a/',
    'managed_processes:',
    '  - name: redis',
    '    command: redis-server',
    '    start_delay: 2'
  ].join('\n'), { file: 'old.yml', dir: '/srv', env: {} })
  t.equal(config.applications.command, 'ruby')
  t.same(config.applications.args, ['bin/rails', '-p', '${PORT}'])
  t.equal(config.applications.idleTimeoutMs, 300_000, 'a bare number of seconds')
  t.equal(config.managedProcesses[0].startDelayMs, 2000)
  const lines = config.warnings.map((warning) => `${warning.line}:${warning.column} ${warning.path}: ${warning.message}`)
  t.match(lines.shift(), /^1:1 : this file is written for the Go Navigator, which runs its TurboCable hub at \/cable unless told otherwise; here the hub is off by default: add `cable: \{ enabled: true \}`/)
  t.same(lines, [
    '3:5 applications.framework.runtime_executable: deprecated Go Navigator form: write `applications.command` instead (the command is the runtime, its arguments the server and server_args)',
    '4:5 applications.framework.server_executable: deprecated Go Navigator form: write `applications.command` instead (the command is the runtime, its arguments the server and server_args)',
    '5:5 applications.framework.server_args: deprecated Go Navigator form: write `applications.args` instead (the command is the runtime, its arguments the server and server_args)',
    '5:25 applications.framework.server_args.1: deprecated Go Navigator form: write `${PORT}` (or `${port}`) instead of `{{port}}`',
    '7:5 applications.pools.timeout: deprecated Go Navigator form: write the duration with its unit: `300s`',
    '13:5 managed_processes.0.start_delay: deprecated Go Navigator form: write the duration with its unit: `2s`'
  ])
})

test('a Go file without a cable section is told that the hub is off here; one that says so is not', async (t) => {
  const silent = parseConfig('applications:\n  pools: { start_port: 4100 }\ncable: { enabled: false }\n', { dir: '/srv', env: {} })
  t.same(silent.warnings, [])
  const told = parseConfig('applications:\n  pools: { start_port: 4100 }\n', { dir: '/srv', env: {} })
  t.equal(told.warnings.length, 1)
  t.match(told.warnings[0].message, /TurboCable hub/)
  t.same(parseConfig('applications:\n  start_port: 4100\n', { dir: '/srv', env: {} }).warnings, [], 'not a file in the Go spelling')
})

test('framework as a bare name', async (t) => {
  const rails = parseConfig('applications:\n  framework: rails\n  tenants: [{ path: /a/ }]\n', { dir: '/srv', env: {} })
  t.equal(rails.applications.command, 'bin/rails')
  t.match(rails.warnings.map((warning) => warning.message), [/TurboCable/, /write `applications.command` and `applications.args`/])
  const unknown = problemsOf(() => parseConfig('applications:\n  framework: django\n', { dir: '/srv', env: {} }))
  t.match(unknown?.[0], { path: 'applications.framework', message: /framework `django` has no built-in command here: write `applications.command`/ })
})

test('both spellings of one setting: keep one', async (t) => {
  const problems = problemsOf(() => parseConfig('applications:\n  start_port: 5000\n  pools:\n    start_port: 4000\n', { dir: '/srv', env: {} }))
  t.match(problems, [{ line: 4, column: 5, path: 'applications.pools.start_port', message: '`applications.pools.start_port` and `applications.start_port` are the same setting: keep one of them' }])
})

test('a problem in a translated value is reported where the file has it', async (t) => {
  const problems = problemsOf(() => parseConfig('applications:\n  pools:\n    timeout: soon\n', { file: 'x.yml', dir: '/srv', env: {} }))
  t.match(problems, [{ line: 3, column: 14, path: 'applications.pools.timeout' }])
  const unknown = problemsOf(() => parseConfig('applications:\n  pools:\n    max_sise: 3\n', { dir: '/srv', env: {} }))
  t.match(unknown, [{ line: 3, column: 5, path: 'applications.pools.max_sise', message: /unknown key `max_sise`; valid keys here: max_size, timeout/ }])
})

test('keys the Go loader ignores are errors that say where the setting lives', async (t) => {
  const problems = problemsOf(() => parseConfig('server:\n  public_dir: public\napplications:\n  global_env: { A: b }\n', { dir: '/srv', env: {} }))
  t.match(problems, [
    { path: 'server.public_dir', message: '`server.public_dir` is not read by the Go Navigator either (it ignores the key): write `server.static.public_dir` instead' },
    { path: 'applications.global_env', message: /write `applications.env` instead/ }
  ])
})

test('an unknown key of a file in the Go spelling is said to have done nothing in the Go Navigator either', async (t) => {
  const go = problemsOf(() => parseConfig('applications:\n  pools: { start_port: 4100 }\n  tenants:\n    - path: /a/\n      auth_enabled: true\n', { dir: '/srv', env: {} }))
  t.match(go, [{ path: 'applications.tenants.0.auth_enabled', message: /^unknown key `auth_enabled`; valid keys here: .* \(the Go Navigator ignores keys it does not know: this one did nothing there either\)$/ }])
  const own = problemsOf(() => parseConfig('applications:\n  tenants:\n    - path: /a/\n      auth_enabled: true\n', { dir: '/srv', env: {} }))
  t.notMatch(own?.[0].message, /Go Navigator/, 'not said of a file in this project\'s spelling')
})

test('Go inline regex flags', async (t) => {
  const config = parseConfig('routes:\n  rewrites:\n    - pattern: "(?i)^/API/(.*)"\n      replacement: "/api/$1"\n', { dir: '/srv', env: {} })
  t.ok(config.routes.rewrites[0].pattern.test('/api/x'))
  t.equal(config.routes.rewrites[0].pattern.flags, 'i')
})

test('tenant names derived from paths, as the Go Navigator derives them', async (t) => {
  t.equal(tenantNameFromPath('/tenant1/'), 'tenant1')
  t.equal(tenantNameFromPath('/showcase/2025/boston/', '/showcase'), '2025/boston')
  t.equal(tenantNameFromPath('/'), 'root')
  const single = parseConfig('applications:\n  tenants:\n    - var: { a: b }\n', { dir: '/srv', env: {} })
  t.same([single.applications.tenants[0].name, single.applications.tenants[0].path], ['root', '/'], 'a single tenant without a path is at /')
  const two = problemsOf(() => parseConfig('applications:\n  tenants:\n    - var: {}\n    - path: /b/\n', { dir: '/srv', env: {} }))
  t.match(two, [{ path: 'applications.tenants.0.path', message: /missing required key `path`/ }])
})

test('--check --print: the translated file, ${NAME} references kept', async (t) => {
  const text = 'applications:\n  pools: { start_port: 4100 }\n  framework: { command: "${RUNNER}", args: ["-p", "${port}"] }\n  tenants:\n    - path: /a/\n      root: app\n'
  const printed = canonicalYaml(text, { dir: '/srv', env: { RUNNER: 'node' } })
  t.same(parse(printed), {
    applications: {
      start_port: 4100,
      command: '${RUNNER}',
      args: ['-p', '${PORT}'],
      tenants: [{ path: '/a/', working_dir: 'app', name: 'a' }]
    }
  })
  const again = parseConfig(printed, { dir: '/srv', env: { RUNNER: 'node' } })
  t.same(again.warnings, [])
  t.same([again.applications.startPort, again.applications.args], [4100, ['-p', '${PORT}']])
})

// The YAML examples of the Go Navigator's documentation. What the Go loader reads must load here; what it does not
// read (it ignores unknown keys) is refused here, at those keys. A few examples are refused on purpose, listed below.
const REFUSED: Record<string, string> = {
  'routing-19.yml': 'a rewrite with `redirect: true` and `status: 503`: a redirect status is 301, 302, 303, 307 or 308',
  'yaml-reference-09.yml': 'a CGI script with `allowed_users` while `auth` is off: nobody could be allowed'
}

test('the Go documentation\'s YAML examples', async (t) => {
  const files = readdirSync(docs).filter((name) => name.endsWith('.yml')).sort()
  t.ok(files.length > 150, `${files.length} examples`)
  const counts = { loaded: 0, invalidYaml: 0, notReadByGo: 0, refused: 0 }
  for (const name of files) {
    const text = readFileSync(join(docs, name), 'utf8')
    let value: unknown
    try {
      value = parse(text, { uniqueKeys: true })
    } catch {
      value = undefined
    }
    const problems = problemsOf(() => parseConfig(text, { file: name, dir: docs, env: environmentFor(text) }))
    if (value === undefined) {
      t.ok(problems !== null, `${name}: the docs' YAML is invalid, and refused`)
      counts.invalidYaml++
      continue
    }
    // logging.vector is read by the Go loader, and refused here on purpose (Vector is not built in).
    const foreign = keyPaths(value).filter((path) => !goReads(path) || path.startsWith('logging.vector.'))
    if (REFUSED[name] !== undefined) {
      t.ok(problems !== null, `${name}: refused on purpose: ${REFUSED[name]}`)
      counts.refused++
    } else if (foreign.length === 0) {
      t.same(problems, null, `${name}: every key is one the Go loader reads, so it loads`)
      counts.loaded++
    } else if (problems !== null) {
      // Refused: each problem must be about a key the Go loader does not read (or what it holds).
      const generic = (path: string): string => path.replace(/\.\d+(?=\.|$)/g, '[]')
      // A tenant without a path is refused by the Go Navigator's rules too (its docs: `path` is required).
      const unexplained = problems.filter((problem) => !/^applications\.tenants\.\d+\.path$/.test(problem.path) && !foreign.some((path) => {
        const at = generic(problem.path)
        const key = path.replace(/\[\]$/, '').split('.').at(-1) ?? ''
        return path === at || path.startsWith(`${at}.`) || path.startsWith(`${at}[]`) || at.startsWith(path.replace(/\[\]$/, '')) ||
          problem.message.includes(` ${key}`)
      }))
      t.same(unexplained.map((problem) => `${problem.path}: ${problem.message}`), [], `${name}: refused for keys the Go loader does not read: ${foreign.join(', ')}`)
      counts.notReadByGo++
    } else {
      counts.loaded++
    }
  }
  t.comment(JSON.stringify(counts))
  t.ok(counts.loaded > files.length / 2, 'most examples load')
})
