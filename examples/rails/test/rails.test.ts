// The Rails example under Navigator, through the local Fly edge, as a user meets it:
// two Machines (each a copy of the app with its own disk, like Fly Machines), each
// running the `navigator` CLI with the example's navigator.yml, a real Rails app as
// two tenants, a real Action Cable server, and Debian's chromium driving the pages.
import t, { type Test } from 'tap'
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { cp, mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import WebSocket from 'ws'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { FlyEdge, type RouteEvent } from '@navigator/fly-edge'

const exampleDir = fileURLToPath(new URL('..', import.meta.url))
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
const navigatorBin = join(repoRoot, 'packages/server/bin/navigator.js')
// The example's YAML is read with the same parser @navigator/config uses.
// (It is a dependency of @navigator/config, not of the repository root.)
const YAML = createRequire(join(repoRoot, 'packages/config/package.json'))('yaml') as {
  parse: (text: string) => any
  stringify: (value: unknown) => string
}

const APP = 'rails-example'
const MACHINE_IDS = ['machine-one', 'machine-two']
const COOKIE = '_navigator_machine'
const BOOT_MS = 90_000
const WAIT_MS = 30_000
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

t.setTimeout(300_000)

interface Machine {
  id: string
  dir: string
  port: number
  child: ChildProcess
  logs: Array<Record<string, unknown>>
  exited: Promise<void>
  waitForLog: (match: (line: Record<string, unknown>) => boolean, what: string, ms?: number) => Promise<void>
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** A copy of the example for one Machine, with its own ports, peers and (empty) databases. */
async function prepareMachine (id: string, peers: Record<string, string>, ports: { listen: number, cable: number, tenants: number }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `nav-rails-${id}-`))
  await cp(exampleDir, dir, {
    recursive: true,
    filter: (source) => {
      const rel = source.slice(exampleDir.length).replace(/^\/+/, '')
      return !/^(test|log|tmp|\.bundle)(\/|$)/.test(rel) && !/^db\/.*\.sqlite3/.test(rel) && rel !== 'Gemfile.lock'
    }
  })
  const config = YAML.parse(await readFile(join(exampleDir, 'navigator.yml'), 'utf8'))
  config.server.listen = `127.0.0.1:${ports.listen}`
  config.routes.fly.sticky_sessions.peers = peers
  config.applications.start_port = ports.tenants
  const cable = config.applications.standalone_servers.find((s: { name: string }) => s.name === 'action-cable')
  const bind = cable.args.indexOf('tcp://127.0.0.1:4001')
  if (bind === -1) throw new Error('navigator.yml: the action-cable args no longer bind tcp://127.0.0.1:4001')
  cable.args[bind] = `tcp://127.0.0.1:${ports.cable}`
  cable.port = ports.cable
  await writeFile(join(dir, 'navigator.yml'), YAML.stringify(config))
  // Resolve the Gemfile against the gems installed on this computer (no network).
  await withTimeout(promisify(execFile)('bundle', ['lock', '--local'], { cwd: dir }), WAIT_MS, `bundle lock in ${dir}`)
  return dir
}

function startMachine (id: string, dir: string, port: number): Machine {
  // Navigator runs as a user runs it: without the test runner's loaders.
  const { NODE_OPTIONS: _testRunnerLoaders, ...environment } = process.env
  const child = spawn(process.execPath, [navigatorBin, 'navigator.yml'], {
    cwd: dir,
    env: {
      ...environment,
      FLY_MACHINE_ID: id,
      FLY_APP_NAME: APP,
      FLY_REGION: 'iad',
      SECRET_KEY_BASE: 'a'.repeat(128),
      LOG_LEVEL: 'debug'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const logs: Array<Record<string, unknown>> = []
  const waiters = new Set<() => void>()
  const onLine = (line: string): void => {
    let entry: Record<string, unknown>
    try {
      entry = JSON.parse(line)
    } catch {
      entry = { msg: line }
    }
    logs.push(entry)
    for (const wake of waiters) wake()
  }
  createInterface({ input: child.stdout! }).on('line', onLine)
  createInterface({ input: child.stderr! }).on('line', onLine)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const waitForLog = (match: (line: Record<string, unknown>) => boolean, what: string, ms = BOOT_MS): Promise<void> =>
    withTimeout(new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (logs.some(match)) {
          waiters.delete(check)
          resolve()
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.delete(check)
          reject(new Error(`${id}: navigator exited (${child.exitCode ?? child.signalCode}) before ${what}:\n` +
            logs.slice(-30).map((l) => JSON.stringify(l)).join('\n')))
        }
      }
      waiters.add(check)
      child.once('exit', check)
      check()
    }), ms, `${id}: ${what}`)
  return { id, dir, port, child, logs, exited, waitForLog }
}

async function stopMachine (machine: Machine): Promise<void> {
  if (machine.child.exitCode !== null || machine.child.signalCode !== null) return
  machine.child.kill('SIGTERM')
  try {
    await withTimeout(machine.exited, 40_000, `${machine.id} to exit after SIGTERM`)
  } catch {
    machine.child.kill('SIGKILL')
    await machine.exited
  }
}

/** The message bodies stored in a tenant's SQLite file on a Machine's disk ([] when there is no file). */
async function storedMessages (file: string): Promise<string[]> {
  if (!await access(file).then(() => true, () => false)) return []
  const script = 'require "sqlite3"; require "json"; ' +
    'puts JSON.generate(SQLite3::Database.new(ARGV[0], readonly: true).execute("SELECT body FROM messages").flatten)'
  const { stdout } = await withTimeout(promisify(execFile)('ruby', ['-e', script, file]), WAIT_MS, `reading ${file}`)
  return JSON.parse(stdout)
}

// ---- the cluster: two Machines behind the local Fly edge, and a browser ----

const machines: Machine[] = []
const routes: RouteEvent[] = []
const edgeErrors: unknown[] = []
let edge!: FlyEdge
let browser!: Browser

// One teardown, in order: the browser, the edge, the Machines (Navigator stops its
// Rails children), then the Machines' disks.
const dirs: string[] = []
t.teardown(async () => {
  await browser?.close()
  await edge?.close()
  await Promise.all(machines.map(stopMachine))
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

t.before(async () => {
  const ports = await Promise.all(MACHINE_IDS.map(async () => ({
    listen: await freePort(), cable: await freePort(), tenants: 20_000 + Math.floor(Math.random() * 20_000)
  })))
  const peers = Object.fromEntries(MACHINE_IDS.map((id, i) => [id, `http://127.0.0.1:${ports[i].listen}`]))
  dirs.push(...await Promise.all(MACHINE_IDS.map((id, i) => prepareMachine(id, peers, ports[i]))))
  MACHINE_IDS.forEach((id, i) => machines.push(startMachine(id, dirs[i], ports[i].listen)))
  // Each Machine listens, and its Action Cable server is up.
  await Promise.all(machines.map((m) => m.waitForLog((l) => l.msg === 'listening', 'listening')))
  await Promise.all(machines.map((m) => m.waitForLog(
    (l) => l.msg === 'standalone server ready' && l.process === 'action-cable', 'the action-cable server')))
  // Boot every tenant on every Machine now, in parallel, by asking each Machine
  // directly (no cookie: served locally), so that the tests below do not each wait
  // for a Rails boot on whichever Machine a new browser lands on.
  await Promise.all(machines.flatMap((m) => ['/tenant-a/', '/tenant-b/'].map(async (path) => {
    const reply = await fetch(`http://127.0.0.1:${m.port}${path}`, { signal: AbortSignal.timeout(BOOT_MS) })
    await reply.text()
    if (reply.status !== 200) throw new Error(`${m.id}: ${path} answered ${reply.status} while booting`)
  })))

  edge = new FlyEdge({
    app: APP,
    machines: machines.map((m) => ({ id: m.id, url: `http://127.0.0.1:${m.port}` }))
  })
  edge.on('route', (event: RouteEvent) => routes.push(event))
  edge.on('edge-error', (event: unknown) => edgeErrors.push(event))
  await edge.listen()

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS })
})

async function newPage (t: Test): Promise<{ context: BrowserContext, page: Page }> {
  const context = await browser.newContext()
  context.setDefaultTimeout(WAIT_MS)
  t.teardown(() => context.close())
  return { context, page: await context.newPage() }
}

async function stickyCookie (context: BrowserContext): Promise<string | undefined> {
  return (await context.cookies()).find((c) => c.name === COOKIE)?.value
}

function other (id: string): string {
  return MACHINE_IDS.find((m) => m !== id) as string
}

t.test('a tenant page stays on one Machine across reloads, and the other Machine replays to it', async (t) => {
  const { context, page } = await newPage(t)
  const first = await page.goto(`${edge.url}/tenant-a/`)
  t.equal(first?.status(), 200)
  t.equal(await page.textContent('#tenant'), 'Tenant A')
  const home = (await page.textContent('#machine')) as string
  t.ok(MACHINE_IDS.includes(home), `served by a Machine of the app (${home})`)
  t.equal(await stickyCookie(context), home, 'the sticky cookie names the Machine that served the page')

  for (let i = 0; i < 4; i++) {
    await page.reload()
    t.equal(await page.textContent('#machine'), home, `reload ${i + 1} is served by the same Machine`)
  }
  // Suspend the home Machine at the edge: the next page load is balanced to the
  // other Machine, which answers fly-replay; the edge wakes the home Machine for it.
  const before = routes.length
  await edge.suspendMachine(home)
  await page.reload()
  t.equal(await page.textContent('#machine'), home, 'after a suspension the page still comes from the same Machine')
  const pageRoutes = routes.slice(before).filter((r) => r.url === '/tenant-a/' && !r.websocket)
  t.ok(pageRoutes.some((r) => r.machineId === other(home) && r.answeredWithReplay), 'the other Machine answered with fly-replay')
  t.ok(pageRoutes.some((r) => r.machineId === home && r.replayed && r.status === 200), 'the replayed request was served by the home Machine')
  t.equal(edge.machine(home)?.state, 'started', 'the replay woke the suspended Machine')
  t.equal(await stickyCookie(context), home)
})

t.test('Action Cable through Navigator: Rails\' own client subscribes on the sticky Machine and receives a broadcast', async (t) => {
  const { context, page } = await newPage(t)
  const before = routes.length
  await page.goto(`${edge.url}/tenant-b/`)
  const home = (await page.textContent('#machine')) as string
  t.equal(await stickyCookie(context), home)
  await page.waitForSelector('#cable-log li.cable-welcome')
  await page.waitForSelector('#cable-log li.cable-echo')
  t.equal(await page.textContent('#cable-status'), 'connected')
  t.equal(await page.getAttribute('#cable-log li.cable-welcome', 'data-machine'), home,
    'the WebSocket is held by the cable server of the page\'s Machine')
  t.equal(await page.getAttribute('#cable-log li.cable-echo', 'data-machine'), home, 'the broadcast comes from the same Machine')
  t.match(await page.textContent('#cable-log li.cable-echo'), `hello from ${home}`)

  // Reloads keep the WebSocket on the same Machine, even when the edge balances the
  // upgrade to the other one first.
  for (let i = 0; i < 3; i++) {
    await page.reload()
    await page.waitForSelector('#cable-log li.cable-echo')
    t.equal(await page.getAttribute('#cable-log li.cable-echo', 'data-machine'), home, `reload ${i + 1}: same cable Machine`)
  }
  const upgrades = routes.slice(before).filter((r) => r.websocket && r.url === '/cable' && r.status === 101)
  t.ok(upgrades.length >= 4, 'a WebSocket for each page load')
  t.ok(upgrades.every((r) => r.machineId === home), 'every WebSocket was accepted on the home Machine')
})

t.test('a CSRF-protected form POST that lands on the other Machine is replayed and saved in the tenant\'s database', async (t) => {
  const { context, page } = await newPage(t)
  await page.goto(`${edge.url}/tenant-a/`)
  const home = (await page.textContent('#machine')) as string
  t.equal(await stickyCookie(context), home)
  const body = `posted through a replay ${Date.now()}`
  await page.fill('#message_body', body)
  // With the home Machine suspended, the edge can only deliver the POST to the
  // other Machine first: the form's request must survive the replay intact.
  const before = routes.length
  await edge.suspendMachine(home)
  await page.click('#new-message input[type=submit]')
  await page.locator('#messages .body', { hasText: body }).waitFor()
  t.equal(await page.locator('#errors').count(), 0, 'no validation or CSRF error')
  t.equal(await page.locator('#messages .body', { hasText: body }).count(), 1, 'the message is listed')
  t.match(await page.textContent('#messages'), `written on ${home}`)
  const posts = routes.slice(before).filter((r) => r.method === 'POST' && r.url === '/tenant-a/messages')
  t.ok(posts.some((r) => r.machineId === other(home) && r.answeredWithReplay), 'the POST first reached the other Machine, which replayed it')
  t.ok(posts.some((r) => r.machineId === home && r.replayed && r.status === 303), 'the home Machine accepted the CSRF token and redirected')
  t.notOk(posts.some((r) => r.status === 422), 'no request was refused as forged')
})

t.test('each tenant answers from its own SQLite database on its Machine, and only there', async (t) => {
  const { context, page } = await newPage(t)
  await page.goto(`${edge.url}/tenant-a/`)
  const home = (await page.textContent('#machine')) as string
  t.equal(await stickyCookie(context), home)
  const onlyInA = `only in tenant A ${Date.now()}`
  await page.fill('#message_body', onlyInA)
  await page.click('#new-message input[type=submit]')
  await page.locator('#messages .body', { hasText: onlyInA }).waitFor()

  await page.goto(`${edge.url}/tenant-b/`)
  t.equal(await page.textContent('#tenant'), 'Tenant B')
  t.equal(await page.textContent('#machine'), home, 'the one sticky cookie keeps both tenants on the same Machine')
  t.equal(await page.locator('#messages .body', { hasText: onlyInA }).count(), 0, 'tenant B does not see tenant A\'s message')
  const onlyInB = `only in tenant B ${Date.now()}`
  await page.fill('#message_body', onlyInB)
  await page.click('#new-message input[type=submit]')
  await page.locator('#messages .body', { hasText: onlyInB }).waitFor()

  await page.goto(`${edge.url}/tenant-a/`)
  t.equal(await page.locator('#messages .body', { hasText: onlyInB }).count(), 0, 'tenant A does not see tenant B\'s message')

  const homeDir = machines.find((m) => m.id === home)!.dir
  const otherDir = machines.find((m) => m.id !== home)!.dir
  t.ok((await storedMessages(join(homeDir, 'db/tenant_a.sqlite3'))).includes(onlyInA), 'tenant A\'s row is in tenant_a.sqlite3 on the home Machine')
  t.ok((await storedMessages(join(homeDir, 'db/tenant_b.sqlite3'))).includes(onlyInB), 'tenant B\'s row is in tenant_b.sqlite3 on the home Machine')
  t.notOk((await storedMessages(join(homeDir, 'db/tenant_b.sqlite3'))).includes(onlyInA), 'not in the other tenant\'s database')
  t.notOk((await storedMessages(join(otherDir, 'db/tenant_a.sqlite3'))).includes(onlyInA), 'not on the other Machine\'s disk')
  t.notOk((await storedMessages(join(otherDir, 'db/tenant_b.sqlite3'))).includes(onlyInB), 'not on the other Machine\'s disk')
})

/** Opens an Action Cable WebSocket through the edge; resolves with the HTTP status and, on 101, the welcome's Machine. */
function openCable (origin: string, machineCookie: string | null): Promise<{ status: number, machine?: string, setCookie?: string[] }> {
  const url = edge.url.replace(/^http/, 'ws') + '/cable'
  const identifier = JSON.stringify({ channel: 'MachineChannel', room: 'tenant_a' })
  return withTimeout(new Promise((resolve, reject) => {
    const headers: Record<string, string> = machineCookie === null ? {} : { cookie: `${COOKIE}=${machineCookie}` }
    const ws = new WebSocket(url, ['actioncable-v1-json'], { origin, headers })
    let setCookie: string[] | undefined
    ws.once('upgrade', (res) => { setCookie = res.headers['set-cookie'] })
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 })
      res.resume()
      ws.terminate()
    })
    ws.on('message', (data) => {
      const message = JSON.parse(String(data))
      if (message.type === 'welcome') ws.send(JSON.stringify({ command: 'subscribe', identifier }))
      if (message.message?.type === 'welcome') {
        resolve({ status: 101, machine: message.message.machine, setCookie })
        ws.close()
      }
    })
    ws.once('error', reject)
  }), WAIT_MS, `a WebSocket from ${origin}`)
}

t.test('a WebSocket upgrade that lands on the other Machine is replayed before any handshake and accepted on the sticky Machine', async (t) => {
  const home = MACHINE_IDS[1]
  const before = routes.length
  // Only the other Machine is started: the edge must deliver the upgrade there first.
  await edge.suspendMachine(home)
  const opened = await openCable(edge.url, home)
  t.equal(opened.status, 101)
  t.equal(opened.machine, home, 'the channel runs on the Machine the cookie names')
  const upgrades = routes.slice(before).filter((r) => r.websocket && r.url === '/cable')
  t.ok(upgrades.some((r) => r.machineId === other(home) && r.answeredWithReplay && r.status !== 101),
    'the other Machine answered the upgrade with a plain fly-replay response')
  t.ok(upgrades.some((r) => r.machineId === home && r.replayed && r.status === 101), 'the sticky Machine switched protocols')
})

t.test('a WebSocket opened without a cookie gets the sticky cookie on its 101, naming the Machine that holds it', async (t) => {
  const opened = await openCable(edge.url, null)
  t.equal(opened.status, 101)
  t.ok(MACHINE_IDS.includes(opened.machine as string))
  const sticky = (opened.setCookie ?? []).find((c) => c.startsWith(`${COOKIE}=`))
  t.ok(sticky, 'the 101 response sets the sticky cookie')
  t.match(sticky, new RegExp(`^${COOKIE}=${opened.machine};`), 'for the Machine whose cable server accepted it')
})

t.test('Rails\' Origin check stays on behind Navigator: a WebSocket from a foreign origin is refused', async (t) => {
  t.equal((await openCable('http://evil.example', MACHINE_IDS[0])).status, 404, 'Action Cable refuses the foreign origin')
  t.equal((await openCable(edge.url, MACHINE_IDS[0])).status, 101, 'the app\'s own origin is accepted')
})

t.test('the edge reported no errors while the Rails example ran', async (t) => {
  t.same(edgeErrors, [])
})
