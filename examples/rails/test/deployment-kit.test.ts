// The deployment kit's files must agree with each other: what fly.toml and the
// Dockerfile promise is what config/navigator.yml configures, and both Navigator
// configurations of the example pass the real CLI's --check.
import { test } from 'tap'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const exampleDir = fileURLToPath(new URL('..', import.meta.url))
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
const navigatorBin = join(repoRoot, 'packages/server/bin/navigator.js')
// The parser @navigator/config uses (a dependency of that package, not of the repository root).
const YAML = createRequire(join(repoRoot, 'packages/config/package.json'))('yaml') as { parse: (text: string) => any }

interface Run { code: number, stdout: string, stderr: string }

function navigator (args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const { NODE_OPTIONS: _testRunnerLoaders, STICKY_SECRET: _unset, ...base } = process.env
  return new Promise((resolve) => {
    execFile(process.execPath, [navigatorBin, ...args], { cwd: exampleDir, env: { ...base, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
        resolve({ code, stdout, stderr })
      })
  })
}

/** The value of `key = value` in the [section] (or [[section]]) of a TOML file; comments ignored. */
function tomlValue (toml: string, section: string, key: string): string | undefined {
  let current = ''
  for (const raw of toml.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim()
    const header = /^\[\[?([^\]]+)\]\]?$/.exec(line)
    if (header) {
      current = header[1].trim()
      continue
    }
    const pair = /^([A-Za-z_]+)\s*=\s*(.+)$/.exec(line)
    if (pair && current === section && pair[1] === key) return pair[2].trim().replace(/^"(.*)"$/, '$1')
  }
  return undefined
}

function seconds (duration: string): number {
  const match = /^(\d+)(s|m)$/.exec(duration)
  if (match === null) throw new Error(`unexpected duration ${duration}`)
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1)
}

test('navigator --check accepts the local and the production configuration of the Rails example', async (t) => {
  const local = await navigator(['--check', 'navigator.yml'], {})
  t.equal(local.code, 0, local.stderr)
  const production = await navigator(['--check', 'config/navigator.yml'], { STICKY_SECRET: 'x'.repeat(32) })
  t.equal(production.code, 0, production.stderr)
})

test('the production configuration refuses to start without STICKY_SECRET and names the key', async (t) => {
  const run = await navigator(['config/navigator.yml'], {})
  t.equal(run.code, 2)
  t.match(run.stderr, /config\/navigator\.yml:\d+:\d+: routes\.fly\.sticky_sessions\.secret: .*STICKY_SECRET/)
})

test('fly.toml and the Dockerfile agree with config/navigator.yml', async (t) => {
  const config = YAML.parse(await readFile(join(exampleDir, 'config/navigator.yml'), 'utf8'))
  const toml = await readFile(join(exampleDir, 'fly.toml'), 'utf8')
  const dockerfile = await readFile(join(exampleDir, 'Dockerfile'), 'utf8')
  const sticky = config.routes.fly.sticky_sessions

  t.equal(tomlValue(toml, 'http_service', 'internal_port'), String(config.server.listen), 'internal_port = server.listen')
  t.equal(tomlValue(toml, 'http_service.checks', 'path'), config.server.health_check, 'the health check is server.health_check')
  t.equal(tomlValue(toml, 'http_service', 'auto_stop_machines'), 'suspend')
  t.equal(tomlValue(toml, 'http_service', 'auto_start_machines'), 'true')
  t.equal(tomlValue(toml, 'http_service', 'force_https'), 'true', 'HTTPS everywhere, since the cookie is Secure')
  t.equal(sticky.cookie_secure, true)
  t.equal(tomlValue(toml, '', 'kill_signal'), 'SIGTERM')
  t.ok(seconds(tomlValue(toml, '', 'kill_timeout') ?? '0s') > seconds(config.server.shutdown_timeout),
    'kill_timeout leaves Navigator its shutdown_timeout')
  const volume = tomlValue(toml, 'mounts', 'destination')
  for (const tenant of config.applications.tenants) {
    t.match(tenant.env.DATABASE_URL, `sqlite3:${volume}/`, `${tenant.name}'s database is on the volume`)
  }
  // The replay cache section (commented out) must key on Navigator's cookie.
  t.match(toml, new RegExp(`#\\s*name = "${sticky.cookie_name ?? '_navigator_machine'}"`))

  t.match(dockerfile, /^CMD \["navigator", "config\/navigator\.yml"\]$/m, 'the image runs this configuration')
  t.match(dockerfile, new RegExp(`^EXPOSE ${config.server.listen}$`, 'm'))
})
