import { test } from 'tap'
import type { RouteEvent } from '../src/edge.js'
import type { MachineLauncher } from '../src/machines.js'
import { request, spec, startEdge, startTestMachine } from './fixtures.js'

test('new requests are balanced round robin across started Machines', async (t) => {
  const machines = await Promise.all(['m1', 'm2', 'm3'].map((id) => startTestMachine(t, id)))
  const edge = await startEdge(t, { app: 'demo', machines: machines.map((m) => spec(m)) })
  const routes: RouteEvent[] = []
  edge.on('route', (event: RouteEvent) => routes.push(event))
  const served: string[] = []
  for (let i = 0; i < 6; i++) served.push((await request(`${edge.url}/hello`)).json().machine)
  t.same([...served].sort(), ['m1', 'm1', 'm2', 'm2', 'm3', 'm3'])
  t.equal(new Set(served.slice(0, 3)).size, 3, 'three consecutive requests reach three Machines')
  t.same(routes.map((r) => r.machineId), served)
  t.ok(routes.every((r) => !r.replayed && r.replays === 0 && !r.answeredWithReplay))
})

test('the edge forwards method, path, body, Fly request headers and every Set-Cookie', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)] })
  const reply = await request(`${edge.url}/p?q=1`, {
    method: 'PUT',
    body: 'hello',
    headers: { 'fly-replay-src': 'instance=forged', 'fly-replay-failed': 'forged', 'x-custom': 'yes' }
  })
  t.equal(reply.status, 200)
  t.same(reply.headers['set-cookie'], ['a=1', 'b=2'])
  const seen = reply.json()
  t.equal(seen.method, 'PUT')
  t.equal(seen.url, '/p?q=1')
  t.equal(seen.bodyLength, 5)
  t.equal(seen.headers['x-custom'], 'yes')
  t.equal(seen.headers['fly-client-ip'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.notOk(seen.headers['fly-replay-src'], 'a client cannot forge fly-replay-src')
  t.notOk(seen.headers['fly-replay-failed'], 'a client cannot forge fly-replay-failed')
})

test('stopped and suspended Machines get no new requests while another Machine is started', async (t) => {
  const machines = await Promise.all(['m1', 'm2', 'm3'].map((id) => startTestMachine(t, id)))
  const edge = await startEdge(t, { app: 'demo', machines: machines.map((m) => spec(m)) })
  await edge.stopMachine('m1')
  await edge.suspendMachine('m2')
  t.equal(edge.machine('m1')?.state, 'stopped')
  t.equal(edge.machine('m2')?.state, 'suspended')
  for (let i = 0; i < 4; i++) t.equal((await request(edge.url)).json().machine, 'm3')
  await edge.startMachine('m1')
  const served = new Set<string>()
  for (let i = 0; i < 4; i++) served.add((await request(edge.url)).json().machine)
  t.same([...served].sort(), ['m1', 'm3'])
})

test('a request when every Machine is stopped autostarts one through the launcher', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const calls: string[] = []
  const launcher: MachineLauncher = {
    start: async (id) => { calls.push(`start ${id}`) },
    stop: async (id) => { calls.push(`stop ${id}`) },
    suspend: async (id) => { calls.push(`suspend ${id}`) },
    resume: async (id) => { calls.push(`resume ${id}`) }
  }
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)], launcher })
  await edge.stopMachine('m1')
  const reply = await request(edge.url)
  t.equal(reply.json().machine, 'm1')
  t.equal(edge.machine('m1')?.state, 'started')
  await edge.suspendMachine('m1')
  t.equal((await request(edge.url)).json().machine, 'm1')
  t.same(calls, ['stop m1', 'start m1', 'suspend m1', 'resume m1'], 'a suspended Machine is resumed, not restarted')
})

test('with autostart off and every Machine stopped the edge answers 503', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)], autostart: false })
  await edge.stopMachine('m1')
  const reply = await request(edge.url)
  t.equal(reply.status, 503)
  t.equal(reply.headers['fly-edge-error'], 'NAV_FLY_EDGE_NO_MACHINE')
  t.equal(m1.received.length, 0)
})

test('a Machine that refuses connections is skipped for a new request', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)] })
  await m1.close()
  for (let i = 0; i < 3; i++) t.equal((await request(edge.url)).json().machine, 'm2')
})

test('invalid options are refused when the edge is created', async (t) => {
  const { FlyEdge } = await import('../src/edge.js')
  t.throws(() => new FlyEdge({ app: 'Bad App', machines: [] }), { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
  t.throws(() => new FlyEdge({ app: 'demo', machines: [{ id: 'UPPER', url: 'http://127.0.0.1:1' }] }),
    { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
  t.throws(() => new FlyEdge({ app: 'demo', machines: [{ id: 'a', url: 'x' }] }), { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
  t.throws(() => new FlyEdge({
    app: 'demo', machines: [{ id: 'a', url: 'http://127.0.0.1:1' }, { id: 'a', url: 'http://127.0.0.1:2' }]
  }), { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
  const edge = new FlyEdge({ app: 'demo', machines: [] })
  await t.rejects(edge.stopMachine('nope'), { code: 'NAV_FLY_EDGE_UNKNOWN_MACHINE' })
})
