import { test } from 'tap'
import type { RouteEvent } from '../src/edge.js'
import { REPLAY_CONTENT_TYPE } from '../src/replay.js'
import { fields, recordingLauncher, replayWith, request, spec, startEdge, startTestMachine } from './fixtures.js'

test('instance= discards the replay answer and re-delivers the original request with fly-replay-src', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;state=sticky'))
  const m2 = await startTestMachine(t, 'm2', replayWith('instance=m1'))
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1, 'ord'), spec(m2, 'ams')] })
  const routes: RouteEvent[] = []
  edge.on('route', (event: RouteEvent) => routes.push(event))
  const before = Date.now() * 1000
  const reply = await request(`${edge.url}/upload?x=1`, { method: 'POST', body: 'a body to replay', headers: { 'x-keep': '1' } })
  t.equal(reply.status, 200)
  t.notMatch(String(reply.headers['set-cookie']), /replay=1/, 'nothing of the replay answer reaches the client')
  const seen = reply.json()
  t.equal(seen.machine, 'm2')
  t.equal(seen.method, 'POST')
  t.equal(seen.url, '/upload?x=1')
  t.equal(seen.bodyLength, 16)
  t.equal(seen.headers['x-keep'], '1')
  const src = fields(seen.headers['fly-replay-src'])
  t.equal(src.instance, 'm1')
  t.equal(src.region, 'ord')
  t.equal(src.state, 'sticky')
  t.ok(Number(src.t) >= before && Number(src.t) <= Date.now() * 1000, 't is microseconds since the epoch')
  t.same(routes.map((r) => [r.machineId, r.replayed, r.answeredWithReplay, r.replays]),
    [['m1', false, true, 0], ['m2', true, false, 1]])
})

test('the application/vnd.fly.replay+json body form is honoured, transform included', async (t) => {
  const m1 = await startTestMachine(t, 'm1', (req, res) => {
    if (req.headers['fly-replay-src'] !== undefined) return false
    res.writeHead(409, { 'content-type': REPLAY_CONTENT_TYPE })
    res.end(JSON.stringify({
      instance: 'm2',
      state: 'json',
      transform: { path: '/moved', delete_headers: ['x-drop'], set_headers: [{ name: 'x-added', value: 'yes' }] }
    }))
    return true
  })
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)] })
  const seen = (await request(`${edge.url}/orig`, { headers: { 'x-drop': 'gone' } })).json()
  t.equal(seen.machine, 'm2')
  t.equal(seen.url, '/moved')
  t.notOk(seen.headers['x-drop'])
  t.equal(seen.headers['x-added'], 'yes')
  t.equal(fields(seen.headers['fly-replay-src']).state, 'json')
})

test('prefer_instance delivers to that Machine when it can', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('prefer_instance=m3'))
  const m2 = await startTestMachine(t, 'm2')
  const m3 = await startTestMachine(t, 'm3')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2), spec(m3)] })
  const seen = (await request(edge.url)).json()
  t.equal(seen.machine, 'm3')
  t.notOk(seen.headers['fly-preferred-instance-unavailable'])
})

test('prefer_instance falls back to another Machine with fly-preferred-instance-unavailable', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('prefer_instance=m3;elsewhere=true'))
  const m2 = await startTestMachine(t, 'm2')
  const m3 = await startTestMachine(t, 'm3')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2), spec(m3)] })
  await edge.stopMachine('m2')
  await m3.close()
  await edge.startMachine('m2')
  const routes: RouteEvent[] = []
  edge.on('route', (event: RouteEvent) => routes.push(event))
  const seen = (await request(edge.url)).json()
  t.equal(seen.machine, 'm2')
  t.equal(seen.headers['fly-preferred-instance-unavailable'], 'm3')
  t.equal(routes.at(-1)?.preferredInstanceUnavailable, 'm3')
})

test('prefer_instance wakes a stopped or suspended preferred Machine; with autostart off it goes elsewhere', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('prefer_instance=m3'))
  const m3 = await startTestMachine(t, 'm3')
  const launcher = recordingLauncher()
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), { ...spec(m3), state: 'stopped' }], launcher })
  const forced = { 'fly-force-instance-id': 'm1' }
  let seen = (await request(edge.url, { headers: forced })).json()
  t.equal(seen.machine, 'm3')
  t.notOk(seen.headers['fly-preferred-instance-unavailable'])
  await edge.suspendMachine('m3')
  seen = (await request(edge.url, { headers: forced })).json()
  t.equal(seen.machine, 'm3')
  t.same(launcher.calls, ['start m3', 'suspend m3', 'resume m3'])
  const m2 = await startTestMachine(t, 'm2')
  const cold = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2), { ...spec(m3), state: 'stopped' }], autostart: false })
  m1.handler = replayWith('prefer_instance=m3;elsewhere=true')
  seen = (await request(cold.url, { headers: forced })).json()
  t.equal(seen.machine, 'm2')
  t.equal(seen.headers['fly-preferred-instance-unavailable'], 'm3')
})

test('region= delivers to the first listed region that has a Machine, and any matches every region', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('region="syd,ams,ord"'))
  const m2 = await startTestMachine(t, 'm2')
  const m3 = await startTestMachine(t, 'm3')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1, 'iad'), spec(m2, 'ord'), spec(m3, 'ams')] })
  // Requests balanced straight to m2 or m3 carry no fly-replay-src and are not counted.
  const targets = new Set<string>()
  for (let i = 0; i < 4; i++) {
    const reply = await request(edge.url)
    const seen = reply.json()
    if (seen.headers['fly-replay-src'] !== undefined) targets.add(seen.machine)
  }
  t.same([...targets], ['m3'], 'ams comes before ord in the list, and syd has no Machine')
  m1.handler = replayWith('region="syd,any";elsewhere=true')
  const anywhere = new Set<string>()
  for (let i = 0; i < 6; i++) {
    const seen = (await request(edge.url)).json()
    if (seen.headers['fly-replay-src'] !== undefined) anywhere.add(seen.machine)
  }
  t.same([...anywhere].sort(), ['m2', 'm3'], 'any spreads over every other Machine')
})

test('region aliases such as eu select Machines of their regions', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('region=eu'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1, 'iad'), spec(m2, 'fra')] })
  let reply = await request(edge.url)
  if (reply.json().machine === 'm2') reply = await request(edge.url)
  t.equal(reply.json().machine, 'm2')
  t.equal(fields(reply.json().headers['fly-replay-src']).instance, 'm1')
})

test('app= replays to a Machine of another registered app', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('app=worker'))
  const w1 = await startTestMachine(t, 'w1')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(w1, 'iad', 'worker')] })
  for (let i = 0; i < 3; i++) {
    const seen = (await request(edge.url)).json()
    t.equal(seen.machine, 'w1', 'new requests only go to the edge app; the replay reaches the other app')
  }
  t.equal(m1.received.length, 3)
})

test('elsewhere=true never re-delivers to the Machine that replayed', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const m2 = await startTestMachine(t, 'm2')
  m1.handler = replayWith('elsewhere=true')
  m2.handler = replayWith('elsewhere=true')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)] })
  for (let i = 0; i < 4; i++) {
    const seen = (await request(edge.url)).json()
    t.not(seen.machine, fields(seen.headers['fly-replay-src']).instance)
  }
})

test('a replay to an unreachable instance without fallback is a 502 from the edge', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2;timeout=300ms'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)] })
  await m2.close()
  // Balanced to m2 first or not, the request ends on m1, whose replay cannot reach m2.
  const reply = await request(edge.url)
  t.equal(reply.status, 502)
  t.equal(reply.headers['fly-edge-error'], 'NAV_FLY_EDGE_UNREACHABLE')
  t.match(reply.body, /instance m2 \(retries_exhausted\)/)
})

test('a replay to an unknown instance without fallback is a 502 naming no_candidate', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=nowhere'))
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)] })
  const reply = await request(edge.url)
  t.equal(reply.status, 502)
  t.match(reply.body, /no_candidate/)
})

test('an invalid fly-replay answer is a 502, not a guess', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=NOT A MACHINE;state=x'))
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)] })
  const reply = await request(edge.url)
  t.equal(reply.status, 502)
  t.equal(reply.headers['fly-edge-error'], 'NAV_FLY_EDGE_INVALID_REPLAY')
})

test('the loop guard ends a replay loop after 10 replays', async (t) => {
  const ping = await startTestMachine(t, 'ping', (req, res) => {
    res.writeHead(307, { 'fly-replay': 'instance=pong' })
    res.end()
    return true
  })
  const pong = await startTestMachine(t, 'pong', (req, res) => {
    res.writeHead(307, { 'fly-replay': 'instance=ping' })
    res.end()
    return true
  })
  const edge = await startEdge(t, { app: 'demo', machines: [spec(ping), spec(pong)] })
  const reply = await request(edge.url)
  t.equal(reply.status, 502)
  t.equal(reply.headers['fly-edge-error'], 'NAV_FLY_EDGE_TOO_MANY_REPLAYS')
  t.equal(ping.received.length + pong.received.length, 11, 'the first delivery and 10 replays')
})
