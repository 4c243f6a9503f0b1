import { test } from 'tap'
import { rm } from 'node:fs/promises'
import { FlyEdge, launchMachines } from '@navigator/fly-edge'
import type { ReplayFailedEvent } from '@navigator/fly-edge'
import { growth, http, sample, TENANT_APP, tempDir } from './helpers.js'

// The metrics of three real Navigators behind the local Fly edge, after a scripted mix of what a sticky app meets:
// new visitors, pinned visitors landing on their Machine and on another, an upload too large to replay, a Machine
// stopped under a pinned visitor, a tampered cookie. Every counter's increase is checked against the requests
// sent, exactly. Each client request names the Machine it lands on (`fly-force-instance-id`), so what each Machine
// decides is known up front.

const IDS = ['m1', 'm2', 'm3']
const COOKIE = '_navigator_machine'

const CONFIG = [
  'server:',
  '  listen: "127.0.0.1:3000"',
  '  shutdown_timeout: 2s',
  '  metrics: {}',
  'routes:',
  '  fly:',
  '    sticky_sessions:',
  '      enabled: true',
  '      paths: ["/app/*"]',
  'applications:',
  '  command: node',
  `  args: [${JSON.stringify(TENANT_APP)}]`,
  '  start_port: 4100',
  '  tenants:',
  '    - name: app',
  '      path: /app',
  '      start: eager',
  ''
].join('\n')

const COUNTERS = /^navigator_(requests_total|sticky_decisions_total|sticky_rejected_cookies_total|fly_replay_failed_total|upstream_errors_total|upstream_response_seconds_count)\{/

test('through the edge, every counter of every Machine grows by exactly what the scripted requests did there', async (t) => {
  const dir = tempDir({ 'navigator.yml': CONFIG })
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = `${dir}/navigator.yml`
  const launched = await launchMachines({ config, count: 3, app: 'metrics-e2e', ids: IDS, regions: ['iad'], env: { LOG_LEVEL: 'warn' } })
  t.teardown(() => launched.stop())
  const edge = new FlyEdge({ app: 'metrics-e2e', machines: launched.machines, launcher: launched.launcher, flycastPorts: launched.flycastPorts, autostart: false })
  await edge.listen()
  t.teardown(() => edge.close())
  const failures: ReplayFailedEvent[] = []
  edge.on('replay-failed', (event: ReplayFailedEvent) => failures.push(event))
  const url = Object.fromEntries(launched.machines.map((machine) => [machine.id, machine.url]))
  const scrape = async (id: string): Promise<string> => (await http(url[id], '/metrics')).text
  const [m1Before, m2Before] = [await scrape('m1'), await scrape('m2')]

  const on = (id: string, cookie?: string): Record<string, string> => ({ 'fly-force-instance-id': id, ...cookie === undefined ? {} : { cookie: `${COOKIE}=${cookie}` } })
  const statuses: number[] = []
  const send = async (path: string, options: Parameters<typeof http>[2]): Promise<void> => { statuses.push((await http(edge.url, path, options)).status) }
  // New visitors: two land on m1, one on m2.
  await send('/app/page', { headers: on('m1') })
  await send('/app/page', { headers: on('m1') })
  await send('/app/page', { headers: on('m2') })
  // Pinned to m1: one lands there, one on m2, which replays it to m1.
  await send('/app/page', { headers: on('m1', 'm1') })
  await send('/app/page', { headers: on('m2', 'm1') })
  // An upload over max_replay_body (1,000,000 bytes) lands on m2, which proxies it to m1 directly.
  await send('/app/echo', { method: 'POST', headers: { ...on('m2', 'm1'), 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1_000_001, 7) })
  // m3 stops under a visitor pinned to it: m1 replays, the edge hands the request back with fly-replay-failed.
  await edge.stopMachine('m3')
  await send('/app/page', { headers: on('m1', 'm3') })
  // A tampered cookie, on m2.
  await send('/app/page', { headers: on('m2', 'm1"') })

  t.same(statuses, [200, 200, 200, 200, 200, 200, 503, 200], 'what the clients got')
  t.equal(failures.length, 1, 'the edge handed one replay back')
  const reason = failures[0].reason
  const [m1After, m2After] = [await scrape('m1'), await scrape('m2')]

  t.same(growth(m1Before, m1After, COUNTERS), {
    // 2 new visitors, the pinned visitor there, the one m2 replayed, the upload m2 proxied.
    'navigator_requests_total{step="tenants",answer="tenant",status_class="2xx"}': 5,
    'navigator_requests_total{step="sticky-sessions",answer="sticky-replay",status_class="3xx"}': 1,
    'navigator_requests_total{step="sticky-sessions",answer="fallback-maintenance",status_class="5xx"}': 1,
    'navigator_sticky_decisions_total{decision="new"}': 2,
    'navigator_sticky_decisions_total{decision="own"}': 3,
    'navigator_sticky_decisions_total{decision="replayed"}': 1,
    'navigator_sticky_decisions_total{decision="fallback"}': 1,
    [`navigator_fly_replay_failed_total{reason="${reason}"}`]: 1,
    'navigator_upstream_response_seconds_count{upstream="app",kind="tenant"}': 5
  }, 'm1')
  t.same(growth(m2Before, m2After, COUNTERS), {
    // The new visitor and the tampered cookie were served here; the replay and the upload were not.
    'navigator_requests_total{step="tenants",answer="tenant",status_class="2xx"}': 2,
    'navigator_requests_total{step="sticky-sessions",answer="sticky-direct-proxy",status_class="2xx"}': 1,
    'navigator_requests_total{step="sticky-sessions",answer="sticky-replay",status_class="3xx"}': 1,
    'navigator_sticky_decisions_total{decision="new"}': 1,
    'navigator_sticky_decisions_total{decision="replayed"}': 1,
    'navigator_sticky_decisions_total{decision="proxied"}': 1,
    'navigator_sticky_decisions_total{decision="rejected"}': 1,
    'navigator_sticky_rejected_cookies_total{reason="malformed"}': 1,
    'navigator_upstream_response_seconds_count{upstream="app",kind="tenant"}': 2
  }, 'm2')
  t.equal(sample(m1After, 'navigator_tenants{state="ready"}'), 1, 'm1 has its tenant ready')
  t.equal(sample(m1After, 'navigator_websockets_open{kind="relayed"}'), 0)
  t.equal(sample(m1After, 'navigator_websockets_open{kind="cable"}'), 0)
})
