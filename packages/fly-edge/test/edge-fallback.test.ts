import { test } from 'tap'
import type { ReplayFailedEvent, RouteEvent } from '../src/edge.js'
import type { MachineLauncher } from '../src/machines.js'
import { fields, replayWith, request, spec, startEdge, startTestMachine } from './fixtures.js'

test('fallback=force_self re-delivers to the issuer with fly-replay-failed reason=retries_exhausted', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;state=s1;timeout=500ms;fallback=force_self'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1, 'ord'), spec(m2, 'ams')] })
  await m2.close()
  const failures: ReplayFailedEvent[] = []
  const routes: RouteEvent[] = []
  edge.on('replay-failed', (event: ReplayFailedEvent) => failures.push(event))
  edge.on('route', (event: RouteEvent) => routes.push(event))
  const reply = await request(edge.url, { method: 'POST', body: 'keep me' })
  t.equal(reply.status, 200)
  const seen = reply.json()
  t.equal(seen.machine, 'm1')
  t.equal(seen.bodyLength, 7, 'the fallback carries the original body')
  const failed = fields(seen.headers['fly-replay-failed'])
  t.equal(failed.instance, 'm2')
  t.equal(failed.app, 'demo')
  t.equal(failed.replay_source, 'm1')
  t.equal(failed.reason, 'retries_exhausted')
  // Not the default replay timeout (5 s) either; the upper bound leaves room for a loaded machine.
  t.ok(Number(failed.elapsed_ms) >= 450 && Number(failed.elapsed_ms) < 4500, `the target was tried for the replay's timeout (${failed.elapsed_ms} ms)`)
  t.notOk(seen.headers['fly-replay-src'], 'a fallback is not a replay')
  t.equal(failures.length, 1)
  t.ok(routes.at(-1)?.fallback)
})

test('fallback after timeout: a target that does not come up in time gives reason=timeout', async (t) => {
  let release = (): void => {}
  const starting = new Promise<void>((resolve) => { release = resolve })
  t.teardown(() => release())
  const launcher: MachineLauncher = {
    start: () => starting,
    stop: async () => {},
    suspend: async () => {},
    resume: () => starting
  }
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;timeout=150ms;fallback=force_self'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), { id: 'm2', url: m2.url, state: 'stopped' }], launcher })
  const reply = await request(edge.url)
  const seen = reply.json()
  t.equal(seen.machine, 'm1')
  const failed = fields(seen.headers['fly-replay-failed'])
  t.equal(failed.reason, 'timeout')
  t.ok(Number(failed.elapsed_ms) >= 140, `elapsed ${failed.elapsed_ms}ms is about the timeout`)
  t.equal(m2.received.length, 0)
})

test('fallback with no candidate: an unknown or non-startable instance gives reason=no_candidate', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;fallback=force_self'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)], autostart: false })
  await edge.stopMachine('m2')
  const seen = (await request(edge.url)).json()
  t.equal(seen.machine, 'm1')
  t.equal(fields(seen.headers['fly-replay-failed']).reason, 'no_candidate')
  m1.handler = replayWith('instance=ghost;fallback=force_self')
  const ghost = (await request(edge.url)).json()
  t.equal(fields(ghost.headers['fly-replay-failed']).instance, 'ghost')
  t.equal(fields(ghost.headers['fly-replay-failed']).reason, 'no_candidate')
})

test('fallback=prefer_self uses another Machine of the app when the issuer is gone too', async (t) => {
  const m2 = await startTestMachine(t, 'm2')
  const m3 = await startTestMachine(t, 'm3')
  const m1 = await startTestMachine(t, 'm1', (req, res) => {
    res.writeHead(307, { 'fly-replay': 'instance=m2;fallback=prefer_self', connection: 'close' })
    res.end()
    void m1.close()
    return true
  })
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2), spec(m3)], replayTimeoutMs: 300 })
  await m2.close()
  // m1 closes itself after answering: its fallback has to go to m3.
  let seen = (await request(edge.url)).json()
  for (let i = 0; i < 5 && m1.received.length === 0; i++) seen = (await request(edge.url)).json()
  t.equal(seen.machine, 'm3')
  t.equal(fields(seen.headers['fly-replay-failed']).reason, 'retries_exhausted')
})

test('fallback=prefer_self goes back to the issuer when it is there', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;fallback=prefer_self'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)], replayTimeoutMs: 300 })
  await m2.close()
  const seen = (await request(edge.url)).json()
  t.equal(seen.machine, 'm1')
  t.ok(seen.headers['fly-replay-failed'])
})

test('a fly-replay answer to a fallback request is an error, as on Fly', async (t) => {
  const m1 = await startTestMachine(t, 'm1', (req, res) => {
    res.writeHead(307, { 'fly-replay': 'instance=m2;fallback=force_self' })
    res.end()
    return true
  })
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)], replayTimeoutMs: 300 })
  await m2.close()
  const reply = await request(edge.url)
  t.equal(reply.status, 502)
  t.equal(reply.headers['fly-edge-error'], 'NAV_FLY_EDGE_REPLAY_ON_FALLBACK')
  t.ok(m1.received.at(-1)?.headers['fly-replay-failed'])
})

test('a replay to a stopped Machine autostarts it through the launcher, then delivers', async (t) => {
  const started: string[] = []
  const launcher: MachineLauncher = {
    start: async (id) => { started.push(id) },
    stop: async () => {},
    suspend: async () => {},
    resume: async (id) => { started.push(`resume ${id}`) }
  }
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;timeout=2s;fallback=force_self'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)], launcher })
  await edge.stopMachine('m2')
  const seen = (await request(edge.url)).json()
  t.equal(seen.machine, 'm2')
  t.same(started, ['m2'])
  t.equal(edge.machine('m2')?.state, 'started')
  await edge.suspendMachine('m2')
  t.equal((await request(edge.url)).json().machine, 'm2')
  t.same(started, ['m2', 'resume m2'])
})

test('a replay keeps trying its target until the replay\'s timeout: a Machine that comes up within it is reached', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;timeout=3s;fallback=force_self'))
  const m2 = await startTestMachine(t, 'm2')
  const port = m2.port
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)] })
  await m2.close()
  // m2's process "comes back" on its port 400 ms after the replay began refusing.
  edge.once('replay', () => { setTimeout(() => { m2.server.listen(port, '127.0.0.1') }, 400) })
  const started = Date.now()
  const reply = await request(edge.url, { headers: { 'fly-force-instance-id': 'm1' } })
  const elapsed = Date.now() - started
  t.equal(reply.json().machine, 'm2', 'served by the target, not the fallback')
  t.notOk(reply.json().headers['fly-replay-failed'])
  t.ok(elapsed >= 380 && elapsed < 2500, `after the refusals of the first ${elapsed} ms`)
})

test('a timeout shorter than a cold start ends the replay with reason=timeout; one longer than it is served there', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;timeout=200ms;fallback=force_self'))
  const m2 = await startTestMachine(t, 'm2')
  const launcher: MachineLauncher = {
    start: async () => { await new Promise((resolve) => setTimeout(resolve, 500)) },
    stop: async () => {},
    suspend: async () => {},
    resume: async () => {}
  }
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), { ...spec(m2), state: 'stopped' }], launcher })
  const forced = { 'fly-force-instance-id': 'm1' }
  const short = (await request(edge.url, { headers: forced })).json()
  t.equal(short.machine, 'm1')
  t.equal(fields(short.headers['fly-replay-failed']).reason, 'timeout')
  await edge.stopMachine('m2')
  m1.handler = replayWith('instance=m2;timeout=3s;fallback=force_self')
  const long = (await request(edge.url, { headers: forced })).json()
  t.equal(long.machine, 'm2', 'a 3 s timeout covers the 500 ms start')
})
