import { test } from 'tap'
import { request } from 'node:http'
import { freePort, http, sample, startSite, tenant } from './helpers.js'
import type { Answer } from './helpers.js'

// server.metrics through the real `navigator` process: who may read the metrics path, that it never reaches an
// app (whatever the route, the host or the headers), the listener of their own, and a scrape of ten thousand
// series (its time is measured in bench/metrics-scrape.mjs, not here).

/** Requests the tenants were sent, by the metrics: the upstream latency histogram's count, over every tenant. */
function tenantRequests (text: string): number {
  return text.split('\n')
    .filter((line) => line.startsWith('navigator_upstream_response_seconds_count{') && line.includes('kind="tenant"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
}

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

// Every path goes to a tenant unless Navigator answers it itself: a metrics path that leaked would reach one.
const ROUTES = [
  '  fly:',
  '    replay:',
  '      - path: "^/metrics"',
  '        region: iad',
  '    sticky_sessions:',
  '      enabled: true',
  '      paths: ["/*"]'
]
const ENV = { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'metrics', FLY_REGION: 'ord' }

test('the metrics path answers a client of this computer that asks straight, and 404 through any proxy, method or host, never an app', async (t) => {
  const navigator = await startSite(t, {
    server: ['  metrics:', '    path: /metrics'],
    routes: ROUTES,
    tenants: [tenant('everything', '/', 'start: eager')]
  }, { env: ENV, warm: ['/warm'] })
  const { address } = navigator

  const scrape = await http(address, '/metrics?format=text')
  t.equal(scrape.status, 200, 'asked straight from 127.0.0.1: the metrics')
  t.match(scrape.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(scrape.headers['cache-control'], 'no-store')
  t.match(scrape.text, /^# HELP navigator_requests_total /m)
  t.match(scrape.text, /^process_resident_memory_bytes \d+/m, 'with the process metrics (resident memory)')
  t.match(scrape.text, /^nodejs_eventloop_lag_seconds /m, '(event loop lag)')
  // Its samples appear once a collection has run, which the first scrape may come before.
  t.match(scrape.text, /^# TYPE nodejs_gc_duration_seconds histogram$/m, '(garbage collection)')
  t.equal(tenantRequests(scrape.text), 1, 'the tenant was sent the warm-up request only')

  const refused: Array<[string, Answer]> = []
  const ask = async (why: string, path: string, options: Parameters<typeof http>[2] = {}): Promise<void> => {
    refused.push([why, await http(address, path, options)])
  }
  await ask('through Fly\'s edge (Fly-Client-IP)', '/metrics', { headers: { 'fly-client-ip': '203.0.113.9' } })
  await ask('through a proxy (X-Forwarded-For)', '/metrics', { headers: { 'x-forwarded-for': '127.0.0.1' } })
  await ask('through a proxy (Forwarded)', '/metrics', { headers: { forwarded: 'for=127.0.0.1' } })
  await ask('through a proxy (Via)', '/metrics', { headers: { via: '1.1 fly.io' } })
  await ask('for another host, through the edge', '/metrics', { headers: { host: 'other.example', 'fly-client-ip': '203.0.113.9' } })
  await ask('with a cookie for another Machine, through the edge', '/metrics', { headers: { cookie: '_navigator_machine=m2', 'fly-client-ip': '203.0.113.9' } })
  await ask('by a dot segment, through the edge', '/assets/../metrics', { headers: { 'fly-client-ip': '203.0.113.9' } })
  await ask('replayed here by a rule', '/metrics', { headers: { 'fly-replay-src': 'instance=m2;state=nav-rule', 'fly-client-ip': '203.0.113.9' } })
  await ask('a POST', '/metrics', { method: 'POST', body: 'x' })
  await ask('a DELETE', '/metrics', { method: 'DELETE' })
  for (const [why, answer] of refused) t.match(answer, { status: 404, text: 'Not Found\n' }, why)
  t.equal(await upgradeStatus(address, '/metrics'), 404, 'a WebSocket upgrade: 404, never a 101')

  const other = await http(address, '/other', { headers: { 'fly-client-ip': '203.0.113.9', cookie: '_navigator_machine=m1' } })
  t.equal(other.status, 200, 'another path is the app\'s, as before')
  t.equal((await http(address, '/metrics/', { headers: { 'fly-client-ip': '203.0.113.9' } })).status, 307, '/metrics/ is another path: the rule replays it')

  const after = await http(address, '/metrics')
  t.equal(tenantRequests(after.text), 2, 'the tenant was sent the warm-up and /other, nothing else')
  t.equal(sample(after.text, 'navigator_requests_total{step="metrics",answer="metrics",status_class="4xx"}'), refused.length, 'each refusal was answered by the metrics step')
  t.equal(sample(after.text, 'navigator_requests_total{step="metrics",answer="metrics",status_class="2xx"}'), 1, 'and the scrape before')
  t.equal(sample(after.text, 'navigator_requests_total{step="replay-rules",answer="replay-rule",status_class="3xx"}'), 1, 'the rule replayed /metrics/ only')
})

test('with allow, only those addresses may read the metrics: this computer is refused when it is not among them', async (t) => {
  const navigator = await startSite(t, {
    server: ['  metrics:', '    allow: ["192.0.2.0/24", "2001:db8::/32"]'],
    tenants: [tenant('everything', '/', 'start: eager')]
  }, { env: ENV, warm: ['/warm'] })
  const answer = await http(navigator.address, '/metrics')
  t.match(answer, { status: 404, text: 'Not Found\n' }, '127.0.0.1 is not allowed: 404')
})

test('with a listener of their own, the metrics are answered there only, and the main port answers their path with 404', async (t) => {
  const port = await freePort()
  const navigator = await startSite(t, {
    server: ['  metrics:', `    listen: "127.0.0.1:${port}"`, '    path: /internal/metrics'],
    tenants: [tenant('everything', '/', 'start: eager')]
  }, { env: ENV, warm: ['/warm'] })
  await navigator.waitForLog((line) => line.msg === 'metrics listening' && line.address === `http://127.0.0.1:${port}`)
  const own = `http://127.0.0.1:${port}`

  const scrape = await http(own, '/internal/metrics')
  t.equal(scrape.status, 200, 'the metrics, on their own port')
  t.match(scrape.text, /^navigator_requests_total\{step="tenants",answer="tenant",status_class="2xx"\} 1$/m, 'counting the requests of the main port')
  t.match(await http(own, '/metrics'), { status: 404 }, 'another path on that port: 404')
  t.match(await http(own, '/internal/metrics', { headers: { 'x-forwarded-for': '10.1.1.1' } }), { status: 404 }, 'through a proxy: 404 there too')
  t.match(await http(navigator.address, '/internal/metrics'), { status: 404, text: 'Not Found\n' }, 'the main port: 404, even from this computer')
  t.equal(tenantRequests((await http(own, '/internal/metrics')).text), 1, 'and the tenant never saw it')
})

test('a scrape of ten thousand series is complete: every configured tenant\'s series, each once, in valid exposition text', async (t) => {
  // 330 tenants (never started): each has its upstream latency, its upstream failures and its start duration
  // series from the first scrape on, about 31 of them, and its exit, restart and idle-stop counters. How long such a scrape takes: bench/metrics-scrape.mjs.
  const count = 330
  const tenants = Array.from({ length: count }, (_, i) => tenant(`tenant-${i}`, `/t${i}`))
  const navigator = await startSite(t, { server: ['  metrics: {}'], tenants }, { env: ENV })
  const scrape = await http(navigator.address, '/metrics')
  t.equal(scrape.status, 200)
  const lines = scrape.text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
  t.ok(lines.length >= 10_000, `${lines.length} series`)
  const names = lines.map((line) => line.slice(0, line.lastIndexOf(' ')))
  t.equal(new Set(names).size, names.length, 'no series twice')
  // A value is a float as Prometheus parses it (Go's ParseFloat): prom-client writes an empty event-loop histogram's
  // mean and deviation as `Nan`, which Prometheus reads as NaN; whether the first scrape has any sample is timing.
  const malformed = lines.filter((line) => !/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? -?(?:[0-9.e+-]+|NaN|Nan|\+Inf|-Inf)$/.test(line))
  t.same(malformed, [], 'every sample line is `name{labels} value`')
  const described = new Set(scrape.text.split('\n').filter((line) => line.startsWith('# TYPE ')).map((line) => line.split(' ')[2]))
  const undescribed = [...new Set(names.map((name) => name.replace(/\{.*$/, '').replace(/_(bucket|sum|count)$/, '')))].filter((family) => !described.has(family))
  t.same(undescribed, [], 'every family has its TYPE line')
  const missing: string[] = []
  for (let i = 0; i < count; i++) {
    const expected = [
      `navigator_upstream_response_seconds_count{upstream="tenant-${i}",kind="tenant"}`,
      `navigator_upstream_response_seconds_bucket{le="+Inf",upstream="tenant-${i}",kind="tenant"}`,
      `navigator_tenant_start_seconds_count{tenant="tenant-${i}"}`,
      ...['unreachable', 'timeout', 'write-timeout', 'response-failed'].map((failure) => `navigator_upstream_errors_total{upstream="tenant-${i}",kind="tenant",failure="${failure}"}`),
      `navigator_process_unexpected_exits_total{process="tenant-${i}",kind="tenant"}`,
      `navigator_tenant_restarts_total{tenant="tenant-${i}"}`,
      `navigator_tenant_idle_stops_total{tenant="tenant-${i}"}`
    ]
    for (const series of expected) if (sample(scrape.text, series) !== 0) missing.push(series)
  }
  t.same(missing, [], `each of the ${count} tenants has its latency, start, failure, exit, restart and idle-stop series, at 0`)
  t.equal(sample(scrape.text, 'navigator_tenants{state="stopped"}'), count, 'and is counted stopped')
  const again = await http(navigator.address, '/metrics')
  const navigatorSeries = (text: string): string[] => text.split('\n')
    .filter((line) => line.startsWith('navigator_') && !line.startsWith('navigator_requests_total'))
    .map((line) => line.slice(0, line.lastIndexOf(' ')))
  t.same(navigatorSeries(again.text), navigatorSeries(scrape.text), 'a second scrape has the same navigator series (the requests aside: the first is counted now)')
  t.equal(sample(again.text, 'navigator_requests_total{step="metrics",answer="metrics",status_class="2xx"}'), 1, 'and counts the first scrape')
})
