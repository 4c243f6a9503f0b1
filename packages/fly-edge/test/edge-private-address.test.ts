// Each Machine's private address on the edge, standing in for <id>.vm.<app>.internal:<port>: Fly's .internal DNS
// answers only for started Machines (https://fly.io/docs/networking/private-networking/), so dialling a stopped or
// suspended Machine fails at once instead of hanging.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { launchMachines } from '../src/launch.js'
import { request, sha256, spec, startEdge, startTestMachine, tcpConnect } from './fixtures.js'

const config = fileURLToPath(new URL('./fixtures/navigator.yml', import.meta.url))
const navigator = fileURLToPath(new URL('./fixtures/fake-navigator.mjs', import.meta.url))

interface FakeReply { machine: string, pid: number }

test('a started Machine\'s private address relays raw TCP both ways: a request body and a WebSocket pass unchanged', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const wss = new WebSocketServer({ server: m1.server })
  wss.on('connection', (ws) => { ws.on('message', (data, binary) => ws.send(data, { binary })) })
  t.teardown(() => { for (const client of wss.clients) client.terminate(); wss.close() })
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)] })
  const address = edge.privateUrl('m1')
  t.not(address, m1.url)
  const body = randomBytes(2 * 1024 * 1024)
  const reply = await request(`${address}/direct`, { method: 'POST', body, headers: { 'x-raw': 'yes' } })
  const seen = reply.json()
  t.equal(seen.bodySha256, sha256(body))
  t.equal(seen.headers['x-raw'], 'yes')
  t.notOk(seen.headers['fly-client-ip'], 'raw TCP: no proxy headers, unlike the public and Flycast listeners')
  const ws = new WebSocket(`${address.replace('http', 'ws')}/cable`)
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  const frame = randomBytes(100_000)
  ws.send(frame)
  const [echo] = await once(ws, 'message') as [Buffer]
  t.equal(sha256(echo), sha256(frame), 'a WebSocket frame comes back unchanged')
})

test('a stopped or suspended Machine\'s private address refuses connections at once, and opens on the same port when it starts', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), { ...spec(m2), state: 'stopped' }] })
  const address = edge.privateUrl('m1')
  t.equal((await tcpConnect(edge.privateUrl('m2'))).outcome, 'ECONNREFUSED', 'a Machine that starts stopped has an address, closed')
  // A connection open when the Machine stops ends with it.
  const open = http.request(`${address}/`, { agent: new http.Agent({ keepAlive: true }) })
  open.end()
  const [res] = await once(open, 'response') as [http.IncomingMessage]
  res.resume()
  await edge.stopMachine('m1')
  await once(res.socket, 'close')
  for (const state of ['stopped', 'suspended']) {
    if (state === 'suspended') {
      await edge.startMachine('m1')
      await edge.suspendMachine('m1')
    }
    // A connect that is not refused counts as a hang after 10 s; a loaded machine may take a moment to say so.
    const { outcome, ms } = await tcpConnect(address, 10_000)
    t.equal(outcome, 'ECONNREFUSED', `${state}: refused`)
    t.ok(ms < 3000, `${state}: at once (${ms} ms)`)
  }
  await edge.startMachine('m1')
  t.equal(edge.privateUrl('m1'), address)
  t.equal((await request(`${address}/again`)).json().machine, 'm1')
  await edge.startMachine('m2')
  t.equal((await request(edge.privateUrl('m2'))).json().machine, 'm2')
})

test('with real processes, a suspended Machine fails fast through its private address, where a direct connection hangs', async (t) => {
  const launched = await launchMachines({ config, count: 2, app: 'demo', navigator, ids: ['one', 'two'] })
  t.teardown(() => launched.stop())
  const edge = await startEdge(t, { app: 'demo', machines: launched.machines, launcher: launched.launcher, flycastPorts: launched.flycastPorts })
  t.equal(edge.privateUrl('one'), `http://127.0.0.1:${launched.machines[0].privatePort as number}`, 'the port the launcher reserved')
  t.equal((await request(edge.privateUrl('one'))).json<FakeReply>().machine, 'one')
  await edge.suspendMachine('one')
  const direct = await new Promise<string>((resolve) => {
    const req = http.get(launched.machines[0].url, { agent: false }, () => resolve('answered'))
    req.setTimeout(500, () => { req.destroy(); resolve('hang') })
    req.on('error', () => resolve('error'))
  })
  t.equal(direct, 'hang', 'the SIGSTOPped process accepts the connection and never answers')
  // A connect that is not refused counts as a hang after 10 s; a loaded machine may take a moment to say so.
  const { outcome, ms } = await tcpConnect(edge.privateUrl('one'), 10_000)
  t.equal(outcome, 'ECONNREFUSED')
  t.ok(ms < 3000, `the private address fails at once (${ms} ms)`)
  t.equal((await request(edge.url, { headers: { 'fly-force-instance-id': 'one' } })).json<FakeReply>().machine, 'one',
    'a request through the edge resumes it')
  t.equal((await request(edge.privateUrl('one'))).json<FakeReply>().machine, 'one')
})

test('a launched Machine whose process exits on its own is stopped: its private address closes and autostart brings it back', async (t) => {
  const launched = await launchMachines({ config, count: 2, app: 'demo', navigator, ids: ['one', 'two'] })
  t.teardown(() => launched.stop())
  const edge = await startEdge(t, { app: 'demo', machines: launched.machines, launcher: launched.launcher, flycastPorts: launched.flycastPorts })
  const before = (await request(edge.privateUrl('one'))).json<FakeReply>().pid
  const stopped = new Promise<void>((resolve) => {
    edge.on('machine', (event: { id: string, state: string }) => { if (event.id === 'one' && event.state === 'stopped') resolve() })
  })
  process.kill(before, 'SIGKILL')
  await stopped
  t.equal(edge.machine('one')?.state, 'stopped')
  t.equal((await tcpConnect(edge.privateUrl('one'))).outcome, 'ECONNREFUSED')
  for (let i = 0; i < 2; i++) t.equal((await request(edge.url)).json<FakeReply>().machine, 'two', 'new requests go to the live Machine')
  const back = (await request(edge.url, { headers: { 'fly-force-instance-id': 'one' } })).json<FakeReply>()
  t.equal(back.machine, 'one')
  t.not(back.pid, before, 'autostart spawned a new process')
  t.equal((await request(edge.privateUrl('one'))).json<FakeReply>().pid, back.pid)
})

test('a Machine added after listen() gets its private address (and its app a Flycast address) before addMachine resolves', async (t) => {
  const edge = await startEdge(t, { app: 'demo', machines: [] })
  const w1 = await startTestMachine(t, 'w1')
  await edge.addMachine(spec(w1, 'iad', 'worker'))
  t.equal((await request(edge.privateUrl('w1'))).json().machine, 'w1')
  t.equal((await request(edge.flycastUrl('worker'))).json().machine, 'w1')
  t.throws(() => edge.privateUrl('nobody'), { code: 'NAV_FLY_EDGE_UNKNOWN_MACHINE' })
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const taken = (server.address() as AddressInfo).port
  t.teardown(() => { server.close() })
  await t.rejects(edge.addMachine({ id: 'w2', url: w1.url, app: 'worker', privatePort: taken }), { code: 'EADDRINUSE' })
  t.equal(edge.machine('w2'), undefined, 'a Machine whose address cannot listen is not added')
})
