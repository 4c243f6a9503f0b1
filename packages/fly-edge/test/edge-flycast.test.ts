// The Flycast address (http://<app>.flycast through Fly's proxy, https://fly.io/docs/networking/flycast/) and the
// client routing headers fly-force-instance-id and fly-prefer-instance-id
// (https://fly.io/docs/networking/dynamic-request-routing/#the-fly-force-instance-id-header).
import { randomBytes } from 'node:crypto'
import { test } from 'tap'
import { recordingLauncher, request, routesOf, sha256, spec, startEdge, startTestMachine } from './fixtures.js'

test('the Flycast address balances over the started Machines of its app, through the same pipeline as the public edge', async (t) => {
  const machines = await Promise.all(['m1', 'm2', 'm3'].map(async (id) => await startTestMachine(t, id)))
  const w1 = await startTestMachine(t, 'w1')
  const edge = await startEdge(t, { app: 'demo', machines: [...machines.map((m) => spec(m)), spec(w1, 'iad', 'worker')] })
  const routes = routesOf(edge)
  t.not(edge.flycastUrl(), edge.url)
  const served: string[] = []
  for (let i = 0; i < 6; i++) served.push((await request(`${edge.flycastUrl()}/internal`)).json().machine)
  t.same([...served].sort(), ['m1', 'm1', 'm2', 'm2', 'm3', 'm3'])
  t.ok(routes.every((r) => r.flycast), 'the route events say Flycast')
  const seen = machines[0].received.at(-1)
  t.equal(seen?.headers['fly-forwarded-port'], new URL(edge.flycastUrl()).port)
  for (let i = 0; i < 2; i++) t.equal((await request(edge.flycastUrl('worker'))).json().machine, 'w1', 'each app has its own Flycast address')
})

test('fly-force-instance-id delivers only to that Machine, on Flycast and on the public edge alike', async (t) => {
  const machines = await Promise.all(['m1', 'm2', 'm3'].map(async (id) => await startTestMachine(t, id)))
  const edge = await startEdge(t, { app: 'demo', machines: machines.map((m) => spec(m)) })
  for (const base of [edge.flycastUrl(), edge.url]) {
    for (let i = 0; i < 4; i++) {
      t.equal((await request(base, { headers: { 'fly-force-instance-id': 'm2' } })).json().machine, 'm2')
    }
  }
  t.equal(machines[0].received.length + machines[2].received.length, 0)
})

test('fly-force-instance-id starts a stopped Machine and resumes a suspended one, large streamed bodies included', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const m2 = await startTestMachine(t, 'm2')
  const launcher = recordingLauncher()
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), { ...spec(m2), state: 'stopped' }], launcher })
  const forced = { 'fly-force-instance-id': 'm2' }
  t.equal((await request(edge.flycastUrl(), { headers: forced })).json().machine, 'm2')
  await edge.suspendMachine('m2')
  const body = randomBytes(3 * 1024 * 1024)
  const reply = await request(`${edge.flycastUrl()}/upload`, { method: 'POST', body, headers: forced })
  t.equal(reply.json().machine, 'm2')
  t.equal(reply.json().bodySha256, sha256(body), 'a body over 1 MB is streamed to the forced Machine')
  t.same(launcher.calls, ['start m2', 'suspend m2', 'resume m2'])
  t.equal(m1.received.length, 0)
})

test('a forced Machine that is unknown, cannot be started, or cannot be reached is an error, never another Machine', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const m2 = await startTestMachine(t, 'm2')
  const w1 = await startTestMachine(t, 'w1')
  const edge = await startEdge(t, {
    app: 'demo', machines: [spec(m1), spec(m2), spec(w1, 'iad', 'worker')], autostart: false, connectTimeoutMs: 400
  })
  const unknown = await request(edge.flycastUrl(), { headers: { 'fly-force-instance-id': 'ghost' } })
  t.equal(unknown.status, 502)
  t.equal(unknown.headers['fly-edge-error'], 'NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE')
  t.match(unknown.body, /PR02/)
  const otherApp = await request(edge.flycastUrl(), { headers: { 'fly-force-instance-id': 'w1' } })
  t.equal(otherApp.headers['fly-edge-error'], 'NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE', 'a Machine of another app is not found in this one')
  await edge.stopMachine('m2')
  const stopped = await request(edge.flycastUrl(), { headers: { 'fly-force-instance-id': 'm2' } })
  t.equal(stopped.headers['fly-edge-error'], 'NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE')
  t.match(stopped.body, /stopped and autostart is off/)
  await edge.startMachine('m2')
  await m2.close()
  const started = Date.now()
  const unreachable = await request(edge.flycastUrl(), { headers: { 'fly-force-instance-id': 'm2' } })
  const elapsed = Date.now() - started
  t.equal(unreachable.headers['fly-edge-error'], 'NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE')
  t.match(unreachable.body, /retries_exhausted/)
  t.ok(elapsed >= 350 && elapsed < 3000, `it was tried again until the connect timeout (${elapsed} ms)`)
  t.equal(m1.received.length + w1.received.length, 0, 'no other Machine got any of them')
})

test('fly-prefer-instance-id goes to that Machine (waking it) when it can, else to another with fly-preferred-instance-unavailable', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const m2 = await startTestMachine(t, 'm2')
  const launcher = recordingLauncher()
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), { ...spec(m2), state: 'suspended' }], launcher })
  const preferred = { 'fly-prefer-instance-id': 'm2' }
  for (let i = 0; i < 3; i++) {
    const seen = (await request(edge.flycastUrl(), { headers: preferred })).json()
    t.equal(seen.machine, 'm2')
    t.notOk(seen.headers['fly-preferred-instance-unavailable'])
  }
  t.same(launcher.calls, ['resume m2'])
  await m2.close()
  const routes = routesOf(edge)
  const moved = (await request(edge.url, { headers: preferred })).json()
  t.equal(moved.machine, 'm1')
  t.equal(moved.headers['fly-preferred-instance-unavailable'], 'm2')
  t.equal(routes.at(-1)?.preferredInstanceUnavailable, 'm2')
  const unknown = (await request(edge.flycastUrl(), { headers: { 'fly-prefer-instance-id': 'ghost' } })).json()
  t.equal(unknown.machine, 'm1')
  t.equal(unknown.headers['fly-preferred-instance-unavailable'], 'ghost')
})

test('a Flycast listener keeps its configured port, and fly-replay answers work through it', async (t) => {
  const m1 = await startTestMachine(t, 'm1', (req, res) => {
    if (req.headers['fly-replay-src'] !== undefined) return false
    res.writeHead(307, { 'fly-replay': 'instance=m2' })
    res.end()
    return true
  })
  const m2 = await startTestMachine(t, 'm2')
  const probe = await startEdge(t, { app: 'probe', machines: [] })
  const port = Number(new URL(probe.flycastUrl()).port)
  await probe.close()
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)], flycastPorts: { demo: port } })
  t.equal(edge.flycastUrl(), `http://127.0.0.1:${port}`)
  for (let i = 0; i < 2; i++) t.equal((await request(edge.flycastUrl(), { headers: { 'fly-force-instance-id': 'm1' } })).json().machine, 'm2')
  t.throws(() => edge.flycastUrl('nothing'), { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
})
