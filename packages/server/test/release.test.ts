import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t0, { test } from 'tap'
import type { Test } from 'tap'
import { freePort, http, tenantStartPort } from './helpers.js'

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
  mkdirSync(join(dir, 'public'))
  writeFileSync(join(dir, 'public', 'hello.txt'), 'hello from public\n')
  return { dir, port }
}

/** Starts `command args` in `dir`, waits for "listening", asks the tenant and the static file, then SIGTERM. */
async function serves (t: Test, dir: string, port: number, command: string, args: string[]): Promise<void> {
  const child = spawn(command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', resolve) })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('"msg":"listening"')) resolve()
    })
    void exited.then((code) => { reject(new Error(`exited with ${String(code)}: ${output}`)) })
  })
  const address = `http://127.0.0.1:${port}`
  t.equal((await http(address, '/hello.txt')).text, 'hello from public\n', 'a static file')
  t.equal((await http(address, '/app/page?x=1')).text, 'tenant /app/page?x=1', 'a tenant started on demand')
  t.match((await http(address, '/metrics')).text, /^navigator_requests_total\{step="tenants",status_class="2xx"\} 1$/m, 'the metrics, prom-client included')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'stopped cleanly')
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
  await serves(t, dir, port, process.execPath, ['navigator.mjs', 'config.yml'])
})

test('the tarballs install with npm into an empty folder, and npx navigator serves', async (t) => {
  const out = release()
  const tarballs = readdirSync(out).filter((name) => name.endsWith('.tgz')).map((name) => join(out, name))
  t.equal(tarballs.length, 7, 'one tarball per package')
  const { dir, port } = await site(t)
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: dir, encoding: 'utf8' })
  t.equal(install.status, 0, `npm install: ${install.stderr}`)
  // What `npx navigator` runs; npx itself is left out, as it does not pass SIGTERM on to the server.
  await serves(t, dir, port, join(dir, 'node_modules/.bin/navigator'), ['config.yml'])
})
