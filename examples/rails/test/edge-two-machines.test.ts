// The Rails example on two Machines behind the local Fly edge, started as a user starts it:
// `fly-edge --config navigator.yml --machines 2` on the example's own navigator.yml, unchanged.
// Both Machines share one folder of the app (one computer); the edge gives each its own ports
// and its own data folder (NAVIGATOR_DATA), where navigator.yml puts the tenants' SQLite files.
import t, { type Test } from 'tap'
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { access, cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

const exampleDir = fileURLToPath(new URL('..', import.meta.url))
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
const flyEdgeBin = join(repoRoot, 'packages/fly-edge/bin/fly-edge.js')
// The Machines' copies of the config are read with the parser @navigator/config uses.
const YAML = createRequire(join(repoRoot, 'packages/config/package.json'))('yaml') as { parse: (text: string) => any }

const COOKIE = '_navigator_machine'
const WAIT_MS = 30_000
const STOP_MS = 40_000
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

t.setTimeout(120_000)

interface LaunchedMachine { id: string, url: string, data: string }

function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The message bodies stored in a tenant's SQLite file ([] when there is no file). */
async function storedMessages (file: string): Promise<string[]> {
  if (!await access(file).then(() => true, () => false)) return []
  const script = 'require "sqlite3"; require "json"; ' +
    'puts JSON.generate(SQLite3::Database.new(ARGV[0], readonly: true).execute("SELECT body FROM messages").flatten)'
  const { stdout } = await withTimeout(promisify(execFile)('ruby', ['-e', script, file]), WAIT_MS, `reading ${file}`)
  return JSON.parse(stdout)
}

// ---- fly-edge with two Machines on a copy of the example, and a browser ----

let appDir!: string
let edge!: ChildProcess
let edgeUrl!: string
let browser!: Browser
const machines: LaunchedMachine[] = []
const output: string[] = []
const lines = new EventEmitter()

/** The first output line of fly-edge matching `pattern`, waiting for it. */
function waitForLine (pattern: RegExp, what: string): Promise<RegExpExecArray> {
  const seen = output.map((line) => pattern.exec(line)).find((match) => match !== null)
  if (seen !== undefined) return Promise.resolve(seen)
  return withTimeout(new Promise((resolve, reject) => {
    const onLine = (line: string): void => {
      const match = pattern.exec(line)
      if (match === null) return
      lines.off('line', onLine)
      resolve(match)
    }
    lines.on('line', onLine)
    edge.once('exit', () => reject(new Error(`fly-edge exited before ${what}:\n${output.join('\n')}`)))
  }), WAIT_MS, `${what}:\n${output.join('\n')}`)
}

async function stopEdge (): Promise<void> {
  if (edge === undefined || edge.exitCode !== null || edge.signalCode !== null) return
  const exited = once(edge, 'exit')
  edge.kill('SIGTERM')
  try {
    await withTimeout(exited, STOP_MS, 'fly-edge to stop its Machines')
  } catch {
    edge.kill('SIGKILL')
    await exited
  }
}

t.teardown(async () => {
  await browser?.close()
  await stopEdge()
  if (appDir !== undefined) await rm(appDir, { recursive: true, force: true })
})

t.before(async () => {
  // The app as a user has it, without this repository's test files, logs or databases.
  appDir = await mkdtemp(join(tmpdir(), 'nav-rails-edge-'))
  await cp(exampleDir, appDir, {
    recursive: true,
    filter: (source) => {
      const rel = source.slice(exampleDir.length).replace(/^\/+/, '')
      return !/^(test|log|tmp|\.bundle)(\/|$)/.test(rel) && !/^db\/.*\.sqlite3/.test(rel) && rel !== 'Gemfile.lock'
    }
  })
  // Resolve the Gemfile against the gems installed on this computer (no network).
  await withTimeout(promisify(execFile)('bundle', ['lock', '--local'], { cwd: appDir }), WAIT_MS, 'bundle lock')

  // fly-edge runs as a user runs it: without the test runner's loaders.
  const { NODE_OPTIONS: _testRunnerLoaders, ...environment } = process.env
  edge = spawn(process.execPath, [flyEdgeBin, '--config', 'navigator.yml', '--machines', '2', '--port', '0',
    '--app', 'rails-example', '--regions', 'iad,ord'], {
    cwd: appDir,
    env: { ...environment, SECRET_KEY_BASE: 'a'.repeat(128) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  for (const stream of [edge.stdout!, edge.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => { output.push(line); lines.emit('line', line) })
  }
  edgeUrl = (await waitForLine(/^fly-edge listening on (http:\/\/\S+)/, 'the edge'))[1]
  await waitForLine(/^ {2}Machine \S+ \(ord\)/, 'the second Machine')
  for (const line of output) {
    const machine = /^ {2}Machine (\S+) \(\w+\) at (\S+), private address \S+, NAVIGATOR_DATA (\S+)$/.exec(line)
    if (machine !== null) machines.push({ id: machine[1], url: machine[2], data: machine[3] })
  }
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS })
})

/** A browser whose sticky cookie names `machine`: its pages are served by that Machine. */
async function browserPinnedTo (t: Test, machine: string): Promise<{ context: BrowserContext, page: Page }> {
  const context = await browser.newContext()
  context.setDefaultTimeout(WAIT_MS)
  t.teardown(() => context.close())
  await context.addCookies([{ name: COOKIE, value: machine, url: edgeUrl }])
  return { context, page: await context.newPage() }
}

async function writeMessage (page: Page, body: string): Promise<void> {
  await page.fill('#message_body', body)
  await page.click('#new-message input[type=submit]')
  await page.locator('#messages .body', { hasText: body }).waitFor()
}

t.test('the example\'s own navigator.yml runs unchanged on two Machines, each with its own ports and data folder', async (t) => {
  t.equal(await readFile(join(appDir, 'navigator.yml'), 'utf8'), await readFile(join(exampleDir, 'navigator.yml'), 'utf8'),
    'the edge ran the example\'s navigator.yml as it is')
  t.equal(machines.length, 2, 'fly-edge printed both Machines')
  const ports: number[] = []
  for (const machine of machines) {
    const copy = YAML.parse(await readFile(join(appDir, `.fly-edge-${machine.id}-navigator.yml`), 'utf8'))
    const cable = copy.applications.standalone_servers[0]
    t.equal(copy.server.listen, Number(new URL(machine.url).port), 'the Machine listens on its own port')
    t.ok(cable.args.includes(`tcp://127.0.0.1:${cable.port}`), 'its cable server binds the port Navigator proxies to')
    ports.push(copy.server.listen, copy.applications.start_port, cable.port)
  }
  t.equal(new Set(ports).size, 6, 'no listen, tenant or cable port is shared')
  t.not(machines[0].data, machines[1].data, 'each Machine has its own data folder')
})

t.test('each Machine writes its own SQLite files in its NAVIGATOR_DATA folder; a browser pinned to the other Machine sees its own database', async (t) => {
  const [home, other] = machines
  const first = await browserPinnedTo(t, home.id)
  await first.page.goto(`${edgeUrl}/tenant-a/`)
  t.equal(await first.page.textContent('#machine'), home.id, 'the sticky cookie pins the first browser')
  const onHome = `written on the first Machine ${Date.now()}`
  await writeMessage(first.page, onHome)

  t.ok((await storedMessages(join(home.data, 'tenant_a.sqlite3'))).includes(onHome), 'the row is in the first Machine\'s data folder')
  t.notOk((await storedMessages(join(other.data, 'tenant_a.sqlite3'))).includes(onHome), 'not in the other Machine\'s')
  t.notOk((await readdir(join(appDir, 'db'))).some((file) => file.endsWith('.sqlite3')), 'nothing in the shared app folder\'s db/')

  const second = await browserPinnedTo(t, other.id)
  await second.page.goto(`${edgeUrl}/tenant-a/`)
  t.equal(await second.page.textContent('#machine'), other.id, 'the second browser is served by the other Machine')
  t.equal(await second.page.locator('#messages .body', { hasText: onHome }).count(), 0, 'which does not see the first Machine\'s message')
  const onOther = `written on the other Machine ${Date.now()}`
  await writeMessage(second.page, onOther)
  t.same(await storedMessages(join(other.data, 'tenant_a.sqlite3')), [onOther], 'the other Machine\'s database holds only its own row')

  await first.page.reload()
  t.equal(await first.page.locator('#messages .body', { hasText: onOther }).count(), 0, 'and the first Machine does not see it')
  t.equal(await first.page.locator('#messages .body', { hasText: onHome }).count(), 1, 'but still sees its own')

  // Each page's Action Cable WebSocket is held by the cable server of its own Machine.
  for (const [page, machine] of [[first.page, home], [second.page, other]] as const) {
    await page.waitForSelector('#cable-log li.cable-welcome')
    t.equal(await page.getAttribute('#cable-log li.cable-welcome', 'data-machine'), machine.id, `${machine.id}'s cable server runs`)
  }
})

t.test('no child crash-looped: fly-edge printed no Machine warning about an exit or a port in use', async (t) => {
  t.same(output.filter((line) => /exited unexpectedly|in use by another process|cannot start/.test(line)), [])
})
