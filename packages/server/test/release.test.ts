import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t0, { test } from 'tap'
import type { Test } from 'tap'
import { freePort, http, processesIn, tenantStartPort, waitFor } from './helpers.js'

// The release (scripts/release.mjs, `npx pnpm@10.34.9 release`): tarballs that `npm install` takes in an empty
// folder, and a one-file bundle that runs with plain `node` and no node_modules anywhere above it. Both are used the
// way the docs say, in temporary folders, against a real tenant process and a static file.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

let released: string | null = null

/** The release, written once for this file's tests into a temporary folder. */
function release (): string {
  if (released !== null) return released
  const out = mkdtempSync(join(tmpdir(), 'navigator-release-'))
  t0.teardown(() => { rmSync(out, { recursive: true, force: true }) })
  const result = spawnSync(process.execPath, [join(ROOT, 'scripts/release.mjs'), '--out', out], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`release failed: ${result.stderr}`)
  released = out
  return out
}

/** An empty folder with a config of one tenant (plain node) and one static file; returns it and the port. */
async function site (t: Test): Promise<{ dir: string, port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-installed-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const port = await freePort()
  writeFileSync(join(dir, 'app.mjs'), "import { createServer } from 'node:http'\n" +
    "createServer((req, res) => { res.end('tenant ' + req.url) }).listen(Number(process.env.PORT), '127.0.0.1')\n")
  writeFileSync(join(dir, 'config.yml'), [
    'server:',
    `  listen: "127.0.0.1:${port}"`,
    // The metrics load their client lazily: the bundle must carry it all the same.
    '  metrics: {}',
    'applications:',
    '  command: node',
    '  args: [app.mjs]',
    `  start_port: ${tenantStartPort()}`,
    '  tenants:',
    '    - name: app',
    '      path: /app',
    ''
  ].join('\n'))
  writeFileSync(join(dir, 'bad.yml'), 'server:\n  listn: 1\n')
  // recheck, the ReDoS checker, runs in a worker thread: the bundle must carry it there too.
  writeFileSync(join(dir, 'redos.yml'), 'routes:\n  rewrites:\n    - pattern: "^/(a|a)*$"\n      rewrite: /x\n    - pattern: "^/api/v\\\\d+/(.*)$"\n      rewrite: /$1\n')
  mkdirSync(join(dir, 'public'))
  writeFileSync(join(dir, 'public', 'hello.txt'), 'hello from public\n')
  return { dir, port }
}

interface Started {
  exited: Promise<number | null>
  /** SIGTERM to the command's process group: npx does not pass a signal on to the command it runs. */
  stop: () => void
}

/** Starts `command args` in `dir` in a process group of its own and resolves once its output says `ready`. */
async function start (t: Test, dir: string, command: string, args: string[], ready: string): Promise<Started> {
  const child = spawn(command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' }, detached: true })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', resolve) })
  const group = (signal: NodeJS.Signals): void => {
    try { process.kill(-(child.pid as number), signal) } catch {}
  }
  t.teardown(() => { group('SIGKILL') })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes(ready)) resolve()
    })
    void exited.then((code) => { reject(new Error(`exited with ${String(code)}: ${output}`)) })
  })
  return { exited, stop: () => { group('SIGTERM') } }
}

/** Starts `command args` in `dir`, waits for "listening", asks the tenant and the static file, then SIGTERM. */
async function serves (t: Test, dir: string, port: number, command: string, args: string[]): Promise<void> {
  const started = await start(t, dir, command, args, '"msg":"listening"')
  const address = `http://127.0.0.1:${port}`
  t.equal((await http(address, '/hello.txt')).text, 'hello from public\n', 'a static file')
  t.equal((await http(address, '/app/page?x=1')).text, 'tenant /app/page?x=1', 'a tenant started on demand')
  t.match((await http(address, '/metrics')).text, /^navigator_requests_total\{step="tenants",answer="tenant",status_class="2xx"\} 1$/m, 'the metrics, prom-client included')
  started.stop()
  await started.exited
  t.ok(await waitFor(() => processesIn(dir).length === 0, 20_000), 'stopped, the tenant with it')
}

test('the bundle runs with plain node in a folder without node_modules', async (t) => {
  const out = release()
  const { dir, port } = await site(t)
  copyFileSync(join(out, 'navigator.mjs'), join(dir, 'navigator.mjs'))
  t.same(readdirSync(dir).filter((name) => name === 'node_modules'), [], 'no node_modules')
  const version = spawnSync(process.execPath, ['navigator.mjs', '--version'], { cwd: dir, encoding: 'utf8' })
  t.equal(version.stdout.trim(), '0.1.0')
  const bad = spawnSync(process.execPath, ['navigator.mjs', '--check', 'bad.yml'], { cwd: dir, encoding: 'utf8' })
  t.equal(bad.status, 2, 'a config error exits 2')
  t.match(bad.stderr, 'bad.yml:2:3: server.listn: unknown key `listn`; did you mean `listen`?', 'with its position and a suggestion (the schema checker is in the bundle)')
  const redos = spawnSync(process.execPath, ['navigator.mjs', '--check', 'redos.yml'], { cwd: dir, encoding: 'utf8' })
  t.equal(redos.status, 2, 'a pattern that backtracks catastrophically exits 2')
  t.match(redos.stderr, /redos\.yml:3:16: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically \(exponential/, 'found by recheck, carried in the bundle')
  t.notMatch(redos.stderr, 'rewrites.1', 'a safe pattern beside it passes')
  await serves(t, dir, port, process.execPath, ['navigator.mjs', 'config.yml'])
})

/** The release's tarballs installed with npm into the site's folder, as the docs say. */
function install (t: Test, dir: string): void {
  const out = release()
  const tarballs = readdirSync(out).filter((name) => name.endsWith('.tgz')).map((name) => join(out, name))
  t.equal(tarballs.length, 7, 'one tarball per package')
  for (const tarball of tarballs) {
    const manifest = spawnSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }).stdout
    t.notMatch(manifest, 'workspace:', `${tarball}: the workspace versions are resolved`)
  }
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: dir, encoding: 'utf8' })
  t.equal(result.status, 0, `npm install: ${result.stderr}`)
}

test('the tarballs install with npm into an empty folder, and npx navigator serves', async (t) => {
  const { dir, port } = await site(t)
  install(t, dir)
  await serves(t, dir, port, join(dir, 'node_modules/.bin/navigator'), ['config.yml'])
  // --no: never ask a registry for a package that is not installed; --: the options are the command's, not npm's.
  const check = spawnSync('npx', ['--no', '--', 'navigator', '--check', 'bad.yml'], { cwd: dir, encoding: 'utf8' })
  t.equal(check.status, 2)
  t.match(check.stderr, 'bad.yml:2:3: server.listn: unknown key')
  const redos = spawnSync('npx', ['--no', '--', 'navigator', '--check', 'redos.yml'], { cwd: dir, encoding: 'utf8' })
  t.equal(redos.status, 2)
  t.match(redos.stderr, /redos\.yml:3:16: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically \(exponential/)
  await serves(t, dir, port, 'npx', ['--no', '--', 'navigator', 'config.yml'])

  // fly-edge runs the installed @navigator/server's navigator as its Machines.
  const edgePort = await freePort()
  const edge = await start(t, dir, 'npx', ['--no', '--', 'fly-edge', '--config', 'config.yml', '--machines', '2', '--port', String(edgePort), '--app', 'released'],
    'fly-edge listening on')
  const address = `http://127.0.0.1:${edgePort}`
  // Round robin: one request for each Machine.
  for (let i = 0; i < 2; i++) t.equal((await http(address, `/app/page?i=${i}`)).text, `tenant /app/page?i=${i}`, 'a tenant of a Machine behind the edge')
  t.equal((await http(address, '/hello.txt')).text, 'hello from public\n', 'a static file through the edge')
  edge.stop()
  await edge.exited
  t.ok(await waitFor(() => processesIn(dir).length === 0, 30_000), 'the edge stopped its Machines')
})
