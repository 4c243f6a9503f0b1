import { test } from 'tap'
import type { ReplayFailedEvent } from '../src/edge.js'
import type { MachineLauncher } from '../src/machines.js'
import { fields, recordingLauncher, replayWith, request, spec, startEdge, startTestMachine, tcpConnect } from './fixtures.js'

// A destroyed Machine has left its app: a replay naming it finds no candidate at once. A Machine that still exists
// but cannot be started is tried until the replay's timeout, and the replay ends with retries_exhausted.

test('a replay to a destroyed Machine comes back at once with reason=no_candidate; its private address is gone', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;timeout=5s;fallback=force_self'))
  const m2 = await startTestMachine(t, 'm2')
  const launcher = recordingLauncher()
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)], launcher })
  const privateUrl = edge.privateUrl('m2')
  const events: Array<{ id: string, state: string }> = []
  edge.on('machine', (event: { id: string, state: string }) => events.push(event))
  const failures: ReplayFailedEvent[] = []
  edge.on('replay-failed', (event: ReplayFailedEvent) => failures.push(event))

  await edge.destroyMachine('m2')
  t.same(launcher.calls, ['stop m2'], 'its process was stopped')
  t.same(events.map((e) => `${e.id} ${e.state}`), ['m2 stopped', 'm2 destroyed'])
  t.equal(edge.machine('m2'), undefined)
  t.same(edge.machines().map((m) => m.id), ['m1'])
  t.equal((await tcpConnect(privateUrl)).outcome, 'ECONNREFUSED', 'its private address refuses connections')
  await t.rejects(edge.startMachine('m2'), { code: 'NAV_FLY_EDGE_UNKNOWN_MACHINE' }, 'it cannot be started again')

  const started = Date.now()
  const seen = (await request(edge.url)).json()
  t.ok(Date.now() - started < 2_000, 'without waiting for the replay\'s 5 s timeout')
  t.equal(seen.machine, 'm1')
  const failed = fields(seen.headers['fly-replay-failed'])
  t.equal(failed.instance, 'm2')
  t.equal(failed.reason, 'no_candidate')
  t.same(failures.map((f) => f.reason), ['no_candidate'])
  t.equal(m2.received.length, 0)

  const forced = await request(edge.url, { headers: { 'fly-force-instance-id': 'm2' } })
  t.equal(forced.status, 502)
  t.equal(forced.headers['fly-edge-error'], 'NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE')
  m1.handler = replayWith('prefer_instance=m2')
  const preferred = (await request(edge.url)).json()
  t.equal(preferred.headers['fly-preferred-instance-unavailable'], 'm2', 'prefer_instance goes elsewhere, saying so')
})

test('a stopped Machine that cannot be started still exists: the replay ends with retries_exhausted, not no_candidate', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;timeout=300ms;fallback=force_self'))
  const m2 = await startTestMachine(t, 'm2')
  const launcher: MachineLauncher = {
    start: async () => { throw new Error('no capacity on the host') },
    stop: async () => {},
    suspend: async () => {},
    resume: async () => { throw new Error('no capacity on the host') }
  }
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), { id: 'm2', url: m2.url, state: 'stopped' }], launcher })
  const seen = (await request(edge.url)).json()
  t.equal(seen.machine, 'm1')
  t.equal(fields(seen.headers['fly-replay-failed']).reason, 'retries_exhausted')
  t.ok(edge.machine('m2'), 'still listed')
})
