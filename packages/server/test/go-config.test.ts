import { test } from 'tap'
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { http, reservePort, runCli, startNavigator, tempDir, tenantStartPort } from './helpers.js'

// A file written for the Go Navigator, through the real `navigator` command: --check, --check --print, the
// deprecation warnings, and the every-key fixture of @navigator/config starting and serving.

const CONFIG_PACKAGE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config')
const EVERY_KEY = join(CONFIG_PACKAGE, 'test', 'fixtures', 'go-every-key')
// The YAML reader of @navigator/config (a dependency of that package, not of this one).
const { parse } = createRequire(join(CONFIG_PACKAGE, 'package.json'))('yaml') as { parse: (text: string) => unknown }

const OLD_FORMS = [
  'server:',
  '  listen: 3000',
  'applications:',
  '  framework:',
  '    runtime_executable: node',
  '    server_executable: app.mjs',
  '    server_args: ["{{port}}"]',
  '  pools:',
  '    timeout: 300',
  '  tenants:',
  '    - path: /one/',
  'cable:',
  '  enabled: false',
  ''
].join('\n')

test('--check on a Go file with older forms: valid (exit 0), one warning per form, on stderr with its position', async (t) => {
  const dir = tempDir({ 'navigator.yml': OLD_FORMS, 'app.mjs': '' })
  const file = join(dir, 'navigator.yml')
  const { code, stdout, stderr } = await runCli(['--check', file])
  t.equal(code, 0)
  t.equal(stdout, `${file}: ok\n`)
  const lines = stderr.trim().split('\n')
  t.equal(lines.length, 5, stderr)
  t.match(lines[0], `${file}:6:5: applications.framework.runtime_executable: warning: deprecated Go Navigator form: write \`applications.command\``)
  t.match(lines[3], `${file}:8:19: applications.framework.server_args.0: warning: deprecated Go Navigator form: write \`\${PORT}\``)
  t.match(lines[4], `${file}:10:5: applications.pools.timeout: warning: deprecated Go Navigator form: write the duration with its unit: \`300s\``)
})

test('--check --print prints the file in this project\'s spelling, which loads without a warning', async (t) => {
  const dir = tempDir({ 'navigator.yml': OLD_FORMS, 'app.mjs': '' })
  const { code, stdout } = await runCli(['--check', '--print', join(dir, 'navigator.yml')])
  t.equal(code, 0)
  t.same(parse(stdout), {
    server: { listen: 3000, shutdown_timeout: '1s' },
    applications: {
      command: 'node',
      args: ['app.mjs', '${PORT}'],
      idle_timeout: '300s',
      tenants: [{ path: '/one/', name: 'one' }]
    },
    cable: { enabled: false }
  })
  const again = tempDir({ 'navigator.yml': stdout, 'app.mjs': '' })
  const check = await runCli(['--check', join(again, 'navigator.yml')])
  t.same([check.code, check.stderr], [0, ''], 'no warning left')
  const usage = await runCli(['--print', join(dir, 'navigator.yml')])
  t.equal(usage.code, 2, '--print alone is a usage error')
  t.match(usage.stderr, '--print goes with --check')
})

test('a Go key the Go loader ignores stops --check with where the setting lives', async (t) => {
  const dir = tempDir({ 'navigator.yml': 'server:\n  public_dir: public\n' })
  const { code, stderr } = await runCli(['--check', join(dir, 'navigator.yml')])
  t.equal(code, 2)
  t.match(stderr, ':3:3: server.public_dir: `server.public_dir` is not read by the Go Navigator either (it ignores the key): write `server.static.public_dir` instead')
})

test('the deprecation warnings are printed when Navigator starts too', async (t) => {
  const dir = tempDir({
    'navigator.yml': OLD_FORMS.replace('listen: 3000', 'listen: "127.0.0.1:0"').replace('  pools:\n', `  pools:\n    start_port: ${tenantStartPort()}\n`),
    'app.mjs': "import { createServer } from 'node:http'\ncreateServer((req, res) => res.end('one ' + req.url)).listen(Number(process.argv[2]), '127.0.0.1')\n"
  })
  const navigator = await startNavigator(t, dir)
  t.match(navigator.stderr(), 'applications.pools.timeout: warning: deprecated Go Navigator form')
  const answer = await http(navigator.address, '/one/x')
  t.same([answer.status, answer.text], [200, 'one /one/x'], 'served with the translated command and port')
})

test('the config with every Go key path passes --check and starts and serves', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-every-key-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  cpSync(EVERY_KEY, dir, { recursive: true })
  const state = mkdtempSync(join(tmpdir(), 'navigator-every-key-state-'))
  t.teardown(() => { rmSync(state, { recursive: true, force: true }) })
  const env = { STATE: state, TENANT_PORT: String(tenantStartPort()) }
  const check = await runCli(['--check', join(dir, 'navigator.yml')], { env })
  t.same([check.code, check.stderr.split('\n').filter((line) => line.includes('error'))], [0, []], check.stderr)
  const listen = await reservePort()
  await listen.release()
  const navigator = await startNavigator(t, dir, { ...env, LISTEN: `127.0.0.1:${listen.port}` })
  const auth = { authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` }
  const health = await http(navigator.address, '/up')
  t.same([health.status, health.text], [200, 'OK'], 'server.health_check.response')
  const refused = await http(navigator.address, '/tenant1/page')
  t.equal(refused.status, 401, 'auth: a tenant needs the password')
  const one = await http(navigator.address, '/tenant1/page', { headers: auth })
  t.equal(one.status, 200)
  t.match(JSON.parse(one.text), { tenant: 'one', label: 'first', url: '/tenant1/page' }, 'tenant1: applications.env with its var, its own env')
  const two = await http(navigator.address, '/tenant2/x', { headers: auth })
  t.match(JSON.parse(two.text), { tenant: 'two' }, 'tenant2: framework node from applications.runtime/server/args')
  const three = await http(navigator.address, '/tenant3/y', { headers: auth })
  t.match(JSON.parse(three.text), { tenant: 'three' }, 'tenant3: runtime, server and args of its own')
  const legacy = await http(navigator.address, '/legacy/z', { headers: auth })
  t.match(JSON.parse(legacy.text), { tenant: 'one', url: '/tenant1/z' }, 'routes.rewrites {from, to}')
  const old = await http(navigator.address, '/old/q')
  t.same([old.status, old.headers.location], [302, '/tenant1/q'], 'routes.redirects')
  const css = await http(navigator.address, '/assets/site.css')
  t.same([css.status, css.headers['cache-control']], [200, 'public, max-age=31536000, immutable'], 'static files with the cache-control overrides, public path')
  const hooks = readFileSync(join(state, 'hooks.log'), 'utf8').split('\n')
  t.ok(hooks.includes('server-start'), 'hooks.server.start ran')
  t.ok(hooks.includes('every-tenant-start') && hooks.includes('tenant-start') && hooks.includes('tenant2-start'), 'tenant start hooks ran')
})
