import { test } from 'tap'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import WebSocket from 'ws'
import { cableServer, freePort, http, sample, startSite, tenant } from './helpers.js'
import type { Answer, Running } from './helpers.js'

// server.status through the real `navigator` process: what its JSON twin says about this Machine, its processes,
// the sticky counters and the recent fallbacks; who may see the page (as for the metrics: 404 through a proxy, for
// another method or client, never reaching an app); and that what comes from the configuration is escaped.

const COOKIE = '_navigator_machine'
const ENV = { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'status-test', FLY_REGION: 'ord' }
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

interface Snapshot {
  machine: Record<string, unknown>
  processes: Array<Record<string, unknown> & { name: string }>
  sticky: { enabled: boolean, decisions: Record<string, number>, rejected: Record<string, number>, fallbacks: Array<{ at: string, machine: string | null, decision: string }> }
}

async function snapshot (address: string): Promise<Snapshot> {
  const answer = await http(address, '/navigator/status.json')
  if (answer.status !== 200) throw new Error(`the status JSON answered ${answer.status}`)
  return JSON.parse(answer.text) as Snapshot
}

/** Asks for the JSON until `ready` holds for it (processes start in the background). */
async function snapshotWhen (address: string, ready: (s: Snapshot) => boolean, what: string): Promise<Snapshot> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const s = await snapshot(address)
    if (ready(s)) return s
    if (Date.now() > deadline) throw new Error(`${what} did not happen: ${JSON.stringify(s)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const processNamed = (s: Snapshot, name: string): Record<string, unknown> | undefined => s.processes.find((p) => p.name === name)

/**
 * A site with a tenant on /app (eager), one never asked for, a standalone server, a managed process, and sticky
 * sessions on /app/*.
 */
async function stickySite (t: Parameters<Parameters<typeof test>[1]>[0], fallback: string, server: string[] = ['  status: {}']): Promise<{ navigator: Running, cablePort: number }> {
  const cablePort = await freePort()
  const navigator = await startSite(t, {
    server,
    routes: [
      '  fly:',
      '    max_replay_body: 10',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*"]',
      `      fallback_mode: ${fallback}`,
      '      peers:',
      `        m2: "http://127.0.0.1:${await freePort()}"`
    ],
    tenants: [tenant('app', '/app', 'start: eager'), tenant('later', '/later')],
    after: [...cableServer(cablePort), 'managed_processes:', '  - name: worker', '    command: node', '    args: [-e, "setInterval(() => {}, 60000)"]']
  }, { env: ENV })
  return { navigator, cablePort }
}

test('the JSON twin shows this Machine, its processes, the sticky counters and the recent fallbacks', async (t) => {
  const { navigator, cablePort } = await stickySite(t, 'maintenance')
  const { address } = navigator
  const running = await snapshotWhen(address, (s) => processNamed(s, 'app')?.state === 'ready' && processNamed(s, 'cable')?.state === 'running' && processNamed(s, 'worker')?.state === 'running', 'the tenant, the standalone server and the managed process starting')

  t.match(running.machine, { id: 'm1', region: 'ord', app: 'status-test', version: VERSION, pid: navigator.child.pid, listen: address, webSockets: 0 }, 'this Machine')
  t.ok((running.machine.uptimeSeconds as number) > 0, 'up for some time')
  t.equal(running.machine.requestsInFlight, 1, 'the status request itself is in flight')
  t.same(running.processes.map((p) => [p.kind, p.name, p.route]), [['tenant', 'app', '/app'], ['tenant', 'later', '/later'], ['standalone', 'cable', '/cable'], ['managed', 'worker', '']], 'every process of the configuration, in its order')
  const app = processNamed(running, 'app') as Record<string, unknown>
  t.match(app, { state: 'ready', port: Number, pid: Number, restarts: 0, requestsInFlight: 0, webSockets: 0 }, 'the eager tenant: ready')
  t.ok((app.uptimeSeconds as number) >= 0, 'with an uptime')
  t.match(processNamed(running, 'later'), { state: 'stopped', pid: null, uptimeSeconds: null, restarts: 0 }, 'the tenant nobody asked for: stopped')
  t.match(processNamed(running, 'cable'), { state: 'running', port: cablePort, pid: Number, restarts: 0 }, 'the standalone server: running on its port')
  const worker = processNamed(running, 'worker') as Record<string, unknown>
  t.match(worker, { state: 'running', port: null, pid: Number, restarts: 0, requestsInFlight: 0 }, 'the managed process: running, no port')
  t.ok((worker.uptimeSeconds as number) >= 0, 'with an uptime')
  t.same(running.sticky, {
    enabled: true,
    decisions: { new: 0, own: 0, rejected: 0, replayed: 0, proxied: 0, fallback: 0, 're-pinned': 0, routed: 0 },
    rejected: { malformed: 0, 'signature-missing': 0, 'signature-invalid': 0, 'signature-not-configured': 0, 'machine-unknown': 0 },
    fallbacks: []
  }, 'no sticky request yet')

  const cookie = (machine: string, more: Record<string, string> = {}): Record<string, string> => ({ cookie: `${COOKIE}=${machine}`, ...more })
  t.equal((await http(address, '/app/a')).status, 200, 'a new visitor')
  t.equal((await http(address, '/app/a', { headers: cookie('m1') })).status, 200, 'one pinned here')
  t.equal((await http(address, '/app/a', { headers: cookie('m2') })).status, 307, 'one pinned to m2: replayed')
  t.equal((await http(address, '/app/a', { headers: cookie('not%20a%20machine') })).status, 200, 'a malformed cookie: rejected, served here')
  const before = Date.now()
  t.equal((await http(address, '/app/a', { headers: cookie('m2', { 'fly-replay-failed': 'reason=timeout' }) })).status, 503, 'm2 could not be reached by a replay: the maintenance page')
  t.equal((await http(address, '/app/upload', { method: 'POST', headers: cookie('m2'), body: 'x'.repeat(100) })).status, 503, 'nor by the direct proxy, for a body too large to replay')

  // A request and a WebSocket in flight.
  const slow = http(address, '/app/slow?ms=1500')
  await navigator.waitForLog((line) => line.msg === 'slow request started')
  const ws = new WebSocket(`${address.replace('http', 'ws')}/cable`)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  t.teardown(() => { ws.terminate() })

  const after = await snapshot(address)
  t.same(after.sticky.decisions, { new: 2, own: 1, rejected: 1, replayed: 1, proxied: 0, fallback: 2, 're-pinned': 0, routed: 0 }, 'the decisions, by kind (the slow request is a new visitor too)')
  t.same(after.sticky.rejected, { malformed: 1, 'signature-missing': 0, 'signature-invalid': 0, 'signature-not-configured': 0, 'machine-unknown': 0 }, 'the rejected cookies, by reason')
  t.same(after.sticky.fallbacks.map((f) => [f.machine, f.decision]), [['m2', 'fallback'], ['m2', 'fallback']], 'both fallbacks, with the Machine the cookie named')
  const times = after.sticky.fallbacks.map((f) => Date.parse(f.at))
  t.ok(times.every((time) => time >= before - 1000 && time <= Date.now() + 1000) && times[0] >= times[1], 'with their times, newest first')
  t.match(processNamed(after, 'app'), { requestsInFlight: 1 }, 'the slow request is in flight to the tenant')
  t.match(processNamed(after, 'cable'), { webSockets: 1 }, 'the WebSocket is open to the standalone server')
  t.match(after.machine, { requestsInFlight: 2, webSockets: 1 }, 'and this Machine counts both (with the status request)')
  ws.close()
  t.equal((await slow).status, 200)

  // Only the last 20 fallbacks are kept.
  for (let i = 0; i < 25; i++) await http(address, '/app/a', { headers: cookie('m2', { 'fly-replay-failed': 'reason=timeout' }) })
  const many = await snapshot(address)
  t.equal(many.sticky.decisions.fallback, 27, 'every fallback is counted')
  t.equal(many.sticky.fallbacks.length, 20, 'the last 20 are listed')
})

test('with route_to_available, a re-pinned user is a fallback too, and a tenant started again counts a restart', async (t) => {
  const { navigator } = await stickySite(t, 'route_to_available')
  const { address } = navigator
  t.equal((await http(address, '/app/a', { headers: { cookie: `${COOKIE}=m2`, 'fly-replay-failed': 'reason=timeout' } })).status, 200, 'served here')
  const s = await snapshot(address)
  t.equal(s.sticky.decisions['re-pinned'], 1)
  t.same(s.sticky.fallbacks.map((f) => [f.machine, f.decision]), [['m2', 're-pinned']], 'listed with the Machine it was moved away from')

  // The tenant exits (its own doing); the next request starts it again.
  const { pid } = processNamed(s, 'app') as { pid: number }
  process.kill(pid, 'SIGKILL')
  await snapshotWhen(address, (now) => processNamed(now, 'app')?.state === 'stopped', 'the tenant exiting')
  t.equal((await http(address, '/app/a')).status, 200, 'started again by a request')
  const again = await snapshot(address)
  t.match(processNamed(again, 'app'), { state: 'ready', restarts: 1 }, 'one restart')
  t.not(processNamed(again, 'app')?.pid, pid, 'a new process')
})

/** An upgrade request for `path`: the status line the client gets (a 101 would be a WebSocket). */
async function upgradeStatus (address: string, path: string): Promise<number> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers: { connection: 'upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } })
    req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode ?? 0) })
    req.on('error', reject)
    req.end()
  })
}

/** Requests the tenants were sent, by the metrics: the upstream latency histogram's count, over every tenant. */
function tenantRequests (text: string): number {
  return text.split('\n')
    .filter((line) => line.startsWith('navigator_upstream_response_seconds_count{') && line.includes('kind="tenant"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
}

test('the page and its JSON answer a client of this computer that asks straight, and 404 through any proxy or method, never an app', async (t) => {
  // Every path goes to a tenant (or a replay) unless Navigator answers it itself: a status path that leaked would.
  const navigator = await startSite(t, {
    server: ['  metrics: {}', '  status:', '    path: /navigator/status'],
    routes: ['  fly:', '    replay:', '      - path: "^/navigator"', '        region: iad', '    sticky_sessions:', '      enabled: true', '      paths: ["/*"]'],
    tenants: [tenant('everything', '/', 'start: eager')]
  }, { env: ENV, warm: ['/warm'] })
  const { address } = navigator

  const page = await http(address, '/navigator/status?x=1')
  t.equal(page.status, 200, 'the page, asked straight from 127.0.0.1')
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(page.headers['cache-control'], 'no-store')
  t.match(page.headers['content-security-policy'], /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-/, 'only its own script and style run')
  t.match(page.text, /<table id="processes">.*data-process="tenant:everything"/s, 'a table of the processes')
  t.match(page.text, /const JSON_PATH = "\/navigator\/status\.json"/, 'a script that asks for the JSON twin')
  t.equal(page.headers['set-cookie'], undefined, 'no sticky cookie: the page is not the app\'s')
  const head = await http(address, '/navigator/status', { method: 'HEAD' })
  t.match(head, { status: 200, text: '' }, 'HEAD: the headers alone')
  const json = await http(address, '/navigator/status.json')
  t.equal(json.headers['content-type'], 'application/json; charset=utf-8')
  t.equal((JSON.parse(json.text) as Snapshot).machine.id, 'm1')

  const refused: Array<[string, Answer]> = []
  for (const path of ['/navigator/status', '/navigator/status.json']) {
    const ask = async (why: string, asked: string, options: Parameters<typeof http>[2] = {}): Promise<void> => {
      refused.push([`${path}: ${why}`, await http(address, asked, options)])
    }
    await ask('through Fly\'s edge (Fly-Client-IP)', path, { headers: { 'fly-client-ip': '203.0.113.9' } })
    await ask('through a proxy (X-Forwarded-For)', path, { headers: { 'x-forwarded-for': '127.0.0.1' } })
    await ask('through a proxy (Forwarded)', path, { headers: { forwarded: 'for=127.0.0.1' } })
    await ask('through a proxy (Via)', path, { headers: { via: '1.1 fly.io' } })
    await ask('with a cookie for another Machine, through the edge', path, { headers: { cookie: `${COOKIE}=m2`, 'fly-client-ip': '203.0.113.9' } })
    await ask('by a dot segment, through the edge', `/assets/..${path}`, { headers: { 'fly-client-ip': '203.0.113.9' } })
    await ask('a POST', path, { method: 'POST', body: 'x' })
    await ask('a DELETE', path, { method: 'DELETE' })
  }
  for (const [why, answer] of refused) t.match(answer, { status: 404, text: 'Not Found\n' }, why)
  t.equal(await upgradeStatus(address, '/navigator/status'), 404, 'a WebSocket upgrade: 404, never a 101')
  t.equal((await http(address, '/navigator/status/', { headers: { 'fly-client-ip': '203.0.113.9' } })).status, 307, '/navigator/status/ is another path: the rule replays it')

  const scrape = await http(address, '/metrics')
  t.equal(tenantRequests(scrape.text), 1, 'the tenant was sent the warm-up request only')
  t.equal(sample(scrape.text, 'navigator_requests_total{step="status",answer="status",status_class="4xx"}'), refused.length, 'each refusal was answered by the status step')
  t.equal(sample(scrape.text, 'navigator_requests_total{step="status",answer="status",status_class="2xx"}'), 3, 'and the page, HEAD and JSON before')

  // With the metrics on, the page shows their counts: one count per request, read from the same cells.
  await http(address, '/anything', { headers: { cookie: `${COOKIE}=bad"` } })
  const s = await snapshot(address)
  const scraped = (await http(address, '/metrics')).text
  for (const [decision, count] of Object.entries(s.sticky.decisions)) {
    t.equal(sample(scraped, `navigator_sticky_decisions_total{decision="${decision}"}`), count, `${decision}: the metrics' count`)
  }
  t.equal(s.sticky.rejected.malformed, sample(scraped, 'navigator_sticky_rejected_cookies_total{reason="malformed"}'))
  t.equal(s.sticky.rejected.malformed, 1)
})

test('with allow, only those addresses may see the page: this computer is refused when it is not among them', async (t) => {
  const navigator = await startSite(t, {
    server: ['  status:', '    allow: ["192.0.2.0/24", "2001:db8::/32"]'],
    tenants: [tenant('everything', '/', 'start: eager')]
  }, { env: ENV, warm: ['/warm'] })
  t.match(await http(navigator.address, '/navigator/status'), { status: 404, text: 'Not Found\n' }, '127.0.0.1 is not allowed: 404')
  t.match(await http(navigator.address, '/navigator/status.json'), { status: 404, text: 'Not Found\n' }, 'nor for the JSON')
})

test('names from the configuration and the environment are escaped in the page', async (t) => {
  const hostile = '<img src=x onerror=alert(1)>&"\''
  const navigator = await startSite(t, {
    server: ['  status: {}'],
    tenants: [tenant(JSON.stringify(hostile), '/app')]
  }, { env: { ...ENV, FLY_REGION: '<script>alert(2)</script>' } })
  const page = await http(navigator.address, '/navigator/status')
  t.equal(page.status, 200)
  const body = page.text.slice(page.text.indexOf('<main'), page.text.indexOf('</main>'))
  t.notMatch(body, /<img|<script/, 'no markup from a name')
  t.match(body, '&#60;img src=x onerror=alert(1)&#62;&#38;&#34;&#39;', 'the tenant\'s name, as text')
  t.match(body, 'data-process="tenant:&#60;img src=x onerror=alert(1)&#62;&#38;&#34;&#39;"', 'in an attribute too')
  t.match(body, '&#60;script&#62;alert(2)&#60;/script&#62;', 'the region, as text')
  t.match((await snapshot(navigator.address)).processes[0], { name: hostile }, 'the JSON has the name as it is')
})
