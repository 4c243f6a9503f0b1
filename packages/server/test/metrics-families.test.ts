import { test } from 'tap'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { join } from 'node:path'
import WebSocket from 'ws'
import {
  CABLE_APP, freePort, growth, http, sample, siteConfig, startFakeMachinesApi, startNavigator, startSite, tempDir, tenant, waitFor, writeConfig
} from './helpers.js'
import type { Running } from './helpers.js'

// Every family of server.metrics through the real `navigator` process, each against what the test did: the answers
// of navigator_requests_total (by step and by answer), upstream latency and failures, tenant starts, restarts and
// idle stops, standalone servers and managed processes (up and restarts), open WebSockets (relayed and the cable
// hub's), and the Machine's idle suspends and resumes. Exact values, from the difference between two scrapes.

interface Teardown { teardown (fn: () => unknown): void }

const REQUESTS = /^navigator_requests_total\{/

async function scrape (navigator: Running): Promise<string> {
  const answer = await http(navigator.address, '/metrics')
  if (answer.status !== 200) throw new Error(`the scrape answered ${answer.status}`)
  return answer.text
}

/** Scrapes until `series` reads `value` (a counter bumped by an event the test cannot wait for otherwise). */
async function scrapeUntil (navigator: Running, series: string, value: number, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms
  for (;;) {
    const text = await scrape(navigator)
    if (sample(text, series) === value) return text
    if (Date.now() > deadline) throw new Error(`${series} is ${String(sample(text, series))}, not ${value}, after ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A plain HTTP server of this test: the reverse proxy's target. */
async function startTarget (t: Teardown): Promise<string> {
  const server = createServer((req, res) => { req.resume(); res.end('target\n') })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

/** A WebSocket opened on `path`, closed at teardown. */
async function openSocket (t: Teardown, address: string, path: string): Promise<WebSocket> {
  const ws = new WebSocket(address.replace(/^http/, 'ws') + path)
  t.teardown(() => { ws.terminate() })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => { resolve() })
    ws.once('error', reject)
    ws.once('unexpected-response', (req, res) => { reject(new Error(`${path}: ${String(res.statusCode)}`)) })
  })
  return ws
}

const ENV = { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'families', FLY_REGION: 'ord' }
const HTPASSWD = `admin:{SHA}${createHash('sha1').update('secret').digest('base64')}\n`
/** A managed process that runs until stopped. */
const FOREVER = 'setInterval(() => {}, 1000)'

test('each step answers under its step and answer: static, health, redirect, auth refused, replay rule, sticky replay, both fallbacks, standalone, tenant, reverse proxy, not found', async (t) => {
  const target = await startTarget(t)
  const cablePort = await freePort()
  const navigator = await startSite(t, {
    server: ['  health_check: /up', '  metrics: {}', '  static:', '    public_dir: public'],
    routes: [
      '  redirects:',
      '    - from: "^/old$"',
      '      to: /app/new',
      '  reverse_proxies:',
      '    - prefix: /rp/',
      `      target: ${target}`,
      '  fly:',
      '    replay:',
      '      - path: "^/elsewhere"',
      '        region: iad',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*"]',
      '      fallback_mode: route_to_available'
    ],
    tenants: [tenant('app', '/app/', 'start: eager')],
    after: [
      '  standalone_servers:',
      '    - name: srv',
      '      match_path: "/srv/*"',
      '      command: node',
      `      args: ${JSON.stringify([CABLE_APP, String(cablePort)])}`,
      `      port: ${cablePort}`,
      'auth:',
      '  enabled: true',
      '  htpasswd: htpasswd',
      '  public_paths: ["/app/*", "/srv/*", "/rp/*", "/nowhere", "/elsewhere", "/cable"]',
      'cable:',
      '  enabled: true',
      'managed_processes:',
      '  - name: worker',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [-e, ${JSON.stringify(FOREVER)}]`
    ]
  }, { env: ENV, warm: ['/app/warm', '/srv/warm'], files: { 'public/hello.txt': 'hello\n', htpasswd: HTPASSWD } })
  await navigator.waitForLog((line) => line.msg === 'managed process started' && line.process === 'worker')
  const before = await scrape(navigator)

  const statuses: Record<string, number> = {}
  const ask = async (name: string, path: string, headers: Record<string, string> = {}): Promise<void> => {
    statuses[name] = (await http(navigator.address, path, { headers })).status
  }
  await ask('static', '/hello.txt')
  await ask('health', '/up')
  await ask('redirect', '/old')
  await ask('auth refused', '/private')
  await ask('auth passed, nothing there', '/private', { authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` })
  await ask('replay rule', '/elsewhere')
  await ask('sticky replay', '/app/page', { cookie: '_navigator_machine=m2' })
  await ask('fallback re-pin', '/app/page', { cookie: '_navigator_machine=m2', 'fly-replay-failed': 'reason=no_candidate' })
  await ask('standalone', '/srv/x')
  await ask('tenant', '/app/page')
  await ask('tenant, own cookie', '/app/page', { cookie: '_navigator_machine=m1' })
  await ask('reverse proxy', '/rp/x')
  await ask('not found', '/nowhere')
  t.same(statuses, {
    static: 200,
    health: 200,
    redirect: 302,
    'auth refused': 401,
    'auth passed, nothing there': 404,
    'replay rule': 307,
    'sticky replay': 307,
    'fallback re-pin': 200,
    standalone: 200,
    tenant: 200,
    'tenant, own cookie': 200,
    'reverse proxy': 200,
    'not found': 404
  }, 'what the clients got')

  const relayed = await openSocket(t, navigator.address, '/app/socket')
  const cable = await openSocket(t, navigator.address, '/cable')
  const after = await scrape(navigator)
  t.same(growth(before, after, REQUESTS), {
    'navigator_requests_total{step="static-files",answer="static",status_class="2xx"}': 1,
    'navigator_requests_total{step="health-check",answer="health",status_class="2xx"}': 1,
    'navigator_requests_total{step="rewrites",answer="redirect",status_class="3xx"}': 1,
    'navigator_requests_total{step="auth",answer="auth-refused",status_class="4xx"}': 1,
    'navigator_requests_total{step="replay-rules",answer="replay-rule",status_class="3xx"}': 1,
    'navigator_requests_total{step="sticky-sessions",answer="sticky-replay",status_class="3xx"}': 1,
    'navigator_requests_total{step="tenants",answer="fallback-re-pin",status_class="2xx"}': 1,
    'navigator_requests_total{step="standalone-servers",answer="standalone",status_class="2xx"}': 1,
    'navigator_requests_total{step="tenants",answer="tenant",status_class="2xx"}': 2,
    'navigator_requests_total{step="reverse-proxies",answer="reverse-proxy",status_class="2xx"}': 1,
    'navigator_requests_total{step="not-found",answer="not-found",status_class="4xx"}': 2
  }, 'each request counted once, under the step and the answer that served it')
  t.same(growth(before, after, /^navigator_(sticky_decisions_total|fly_replay_failed_total|upstream_response_seconds_count)\{/), {
    'navigator_sticky_decisions_total{decision="replayed"}': 1,
    'navigator_sticky_decisions_total{decision="re-pinned"}': 1,
    // The new visitor, and the WebSocket's handshake (on a sticky path too).
    'navigator_sticky_decisions_total{decision="new"}': 2,
    'navigator_sticky_decisions_total{decision="own"}': 1,
    'navigator_fly_replay_failed_total{reason="no_candidate"}': 1,
    'navigator_upstream_response_seconds_count{upstream="app",kind="tenant"}': 3,
    'navigator_upstream_response_seconds_count{upstream="srv",kind="standalone"}': 1
  }, 'the sticky decisions, the replay handed back, and the upstreams\' latency, by kind')
  t.equal(sample(after, 'navigator_websockets_open{kind="relayed"}'), 1, 'the WebSocket relayed to the tenant')
  t.equal(sample(after, 'navigator_websockets_open{kind="cable"}'), 1, 'the cable hub\'s WebSocket')
  t.equal(sample(after, 'navigator_standalone_up{server="srv"}'), 1, 'the standalone server is up')
  t.equal(sample(after, 'navigator_managed_up{process="worker"}'), 1, 'the managed process is up')
  t.equal(sample(after, 'navigator_tenants{state="ready"}'), 1, 'the tenant is ready')
  t.same([
    'navigator_standalone_restarts_total{server="srv"}',
    'navigator_process_unexpected_exits_total{process="srv",kind="standalone"}',
    'navigator_managed_restarts_total{process="worker"}'
  ].map((series) => sample(after, series)), [0, 0, 0], 'the standalone server\'s and the managed process\'s counters are there, at 0')

  relayed.close()
  cable.close()
  await scrapeUntil(navigator, 'navigator_websockets_open{kind="relayed"}', 0)
  const closed = await scrapeUntil(navigator, 'navigator_websockets_open{kind="cable"}', 0)
  t.equal(sample(closed, 'navigator_websockets_open{kind="relayed"}'), 0, 'both gauges back at 0 once the sockets closed')
})

test('maintenance mode and the sticky maintenance fallback answer under their own answers', async (t) => {
  const navigator = await startSite(t, {
    server: ['  metrics: {}'],
    routes: ['  fly:', '    sticky_sessions:', '      enabled: true', '      paths: ["/app/*"]'],
    tenants: [tenant('app', '/app/')],
    after: ['maintenance:', '  enabled: true']
  }, { env: ENV })
  const before = await scrape(navigator)
  t.equal((await http(navigator.address, '/app/page')).status, 503, 'maintenance mode: the page')
  t.equal((await http(navigator.address, '/other')).status, 503, 'for any path an app would get')
  const after = await scrape(navigator)
  t.same(growth(before, after, REQUESTS), {
    'navigator_requests_total{step="maintenance-mode",answer="maintenance",status_class="5xx"}': 2
  })

  const sticky = await startSite(t, {
    server: ['  metrics: {}'],
    routes: ['  fly:', '    sticky_sessions:', '      enabled: true', '      paths: ["/app/*"]'],
    tenants: [tenant('app', '/app/')]
  }, { env: ENV })
  const from = await scrape(sticky)
  const fallback = await http(sticky.address, '/app/page', { headers: { cookie: '_navigator_machine=m2', 'fly-replay-failed': 'reason=timeout' } })
  t.equal(fallback.status, 503, 'a replay handed back: the maintenance page, cookie kept')
  const to = await scrape(sticky)
  t.same(growth(from, to, /^navigator_(requests_total|sticky_decisions_total|fly_replay_failed_total)\{/), {
    'navigator_requests_total{step="sticky-sessions",answer="fallback-maintenance",status_class="5xx"}': 1,
    'navigator_sticky_decisions_total{decision="fallback"}': 1,
    'navigator_fly_replay_failed_total{reason="timeout"}': 1
  })
})

// A standalone server that dies on /srv/die (exit 1), and counts nothing else.
const DYING_SERVER = `
import { createServer } from 'node:http'
createServer((req, res) => {
  if (req.url.startsWith('/srv/die')) process.exit(1)
  req.resume()
  res.end('up\\n')
}).listen(Number(process.argv[2]), '127.0.0.1')
process.on('SIGTERM', () => { process.exit(0) })
`

/** A managed process that fails (exit 1) the first time, and runs until stopped the next. */
function flakyWorker (marker: string): string {
  return `const fs = require('fs'); if (!fs.existsSync(${JSON.stringify(marker)})) { fs.writeFileSync(${JSON.stringify(marker)}, ''); process.exit(1) } setInterval(() => {}, 1000)`
}

test('processes: tenant starts, restarts and idle stops, upstream failures and timeouts, standalone and managed restarts', async (t) => {
  const port = await freePort()
  const dir = tempDir({ 'dying.mjs': DYING_SERVER })
  const marker = join(dir, 'worker-ran')
  writeConfig(dir, await siteConfig({
    server: ['  metrics: {}'],
    applications: ['  idle_timeout: 2s'],
    tenants: [tenant('app', '/app/'), tenant('closer', '/closer/'), tenant('idler', '/idler/')],
    after: [
      '  standalone_servers:',
      '    - name: srv',
      '      match_path: "/srv/*"',
      '      command: node',
      `      args: [dying.mjs, "${port}"]`,
      '      working_dir: .',
      `      port: ${port}`,
      'managed_processes:',
      '  - name: worker',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [-e, ${JSON.stringify(flakyWorker(marker))}]`,
      '    auto_restart: true'
    ]
  }))
  const navigator = await startNavigator(t, dir, { ...ENV, NAVIGATOR_UPSTREAM_TIMEOUT: '1s' })
  await navigator.waitForLog((line) => line.msg === 'standalone server ready')
  const before = await scrape(navigator)

  // The tenant: started by a request, killed, started again by the next.
  const first = await http(navigator.address, '/app/one')
  t.equal(first.status, 200)
  const { pid } = JSON.parse(first.text) as { pid: number }
  process.kill(pid, 'SIGKILL')
  await navigator.waitForLog((line) => line.msg === 'tenant exited unexpectedly; it restarts on its next request' && line.process === 'app')
  t.equal((await http(navigator.address, '/app/two')).status, 200, 'started again by the next request')
  t.equal((await http(navigator.address, '/app/slow?ms=3000')).status, 504, 'a response slower than the upstream timeout: 504')

  // A tenant that stops listening but keeps running: unreachable.
  t.equal((await http(navigator.address, '/closer/stop-listening')).status, 200)
  t.equal((await http(navigator.address, '/closer/again')).status, 502, 'a tenant that refuses connections: 502')

  // The standalone server dies under a request and is started again after its backoff.
  t.equal((await http(navigator.address, '/srv/ok')).status, 200)
  await http(navigator.address, '/srv/die').catch(() => null)
  await navigator.waitForLog((line) => line.msg === 'standalone server restarting after backoff' && line.process === 'srv')
  t.ok(await waitFor(() => navigator.logs.filter((line) => line.msg === 'standalone server ready').length === 2, 10_000), 'the standalone server is back')
  t.equal((await http(navigator.address, '/srv/ok')).status, 200, 'and answers')

  // The managed process failed once and was restarted.
  t.ok(await waitFor(() => navigator.logs.filter((line) => line.msg === 'managed process started').length === 2, 10_000), 'the worker runs again')

  // The idler starts, and is stopped after idle_timeout.
  t.equal((await http(navigator.address, '/idler/x')).status, 200)
  await navigator.waitForLog((line) => line.msg === 'tenant idle; stopping it' && line.process === 'idler', 10_000)
  const after = await scrapeUntil(navigator, 'navigator_tenant_idle_stops_total{tenant="idler"}', 1)

  // The worker's restart may come before or after the first scrape: it is counted in total, below.
  t.same(growth(before, after, /^navigator_(tenant_start_seconds_count|tenant_restarts_total|process_unexpected_exits_total|standalone_restarts_total|upstream_errors_total|upstream_response_seconds_count)\{/), {
    'navigator_tenant_start_seconds_count{tenant="app"}': 2,
    'navigator_tenant_start_seconds_count{tenant="closer"}': 1,
    'navigator_tenant_start_seconds_count{tenant="idler"}': 1,
    'navigator_tenant_restarts_total{tenant="app"}': 1,
    'navigator_process_unexpected_exits_total{process="app",kind="tenant"}': 1,
    'navigator_process_unexpected_exits_total{process="srv",kind="standalone"}': 1,
    'navigator_standalone_restarts_total{server="srv"}': 1,
    'navigator_upstream_errors_total{upstream="app",kind="tenant",failure="timeout"}': 1,
    'navigator_upstream_errors_total{upstream="closer",kind="tenant",failure="unreachable"}': 1,
    // The request that killed the standalone server got no answer from it.
    'navigator_upstream_errors_total{upstream="srv",kind="standalone",failure="unreachable"}': 1,
    // Time to response headers: the two answers of app, the one of closer before it stopped listening, idler's.
    'navigator_upstream_response_seconds_count{upstream="app",kind="tenant"}': 2,
    'navigator_upstream_response_seconds_count{upstream="closer",kind="tenant"}': 1,
    'navigator_upstream_response_seconds_count{upstream="idler",kind="tenant"}': 1,
    'navigator_upstream_response_seconds_count{upstream="srv",kind="standalone"}': 2
  }, 'every start, restart, exit and failure, once')
  t.equal(sample(after, 'navigator_tenant_idle_stops_total{tenant="idler"}'), 1, 'the idler was stopped for being idle, once')
  t.equal(sample(after, 'navigator_managed_restarts_total{process="worker"}'), 1, 'the worker was restarted once')
  t.equal(sample(after, 'navigator_managed_up{process="worker"}'), 1, 'and is up')
  t.equal(sample(after, 'navigator_standalone_up{server="srv"}'), 1, 'the standalone server is up')
})

test('the Machine\'s idle suspend and the resume after it are counted', async (t) => {
  const dir = tempDir({ 'public/hello.txt': 'hello\n' })
  const apiSocket = join(dir, 'api.sock')
  const { firstCall } = await startFakeMachinesApi(t, apiSocket)
  writeConfig(dir, [
    'server:',
    '  listen: "127.0.0.1:0"',
    '  metrics: {}',
    '  idle:',
    '    action: suspend',
    // The idle timer starts at listen, not at the first request: 3 s leaves room for a loaded machine between them.
    '    timeout: 3s',
    `    api_socket: ${JSON.stringify(apiSocket)}`,
    ''
  ].join('\n'))
  const navigator = await startNavigator(t, dir, { FLY_MACHINE_ID: 'm1abc', FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' })
  t.equal((await http(navigator.address, '/hello.txt')).status, 200)
  await firstCall
  await navigator.waitForLog((line) => line.msg === 'machine suspend accepted')
  t.equal((await http(navigator.address, '/hello.txt')).status, 200, 'the first request after the suspend')
  await navigator.waitForLog((line) => line.msg === 'machine resumed')
  const text = await scrape(navigator)
  t.equal(sample(text, 'navigator_machine_idle_total{action="suspend"}'), 1, 'one suspend accepted')
  t.equal(sample(text, 'navigator_machine_resumes_total'), 1, 'one resume')
})
