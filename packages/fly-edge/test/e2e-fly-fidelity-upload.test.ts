// A 5 MB upload with a cookie naming a suspended Machine, through three real navigator Machines, in both fallback
// modes. The body is five times `max_replay_body` (and over the edge's own 1 MB replay limit), so it can only be
// proxied by the Machine it lands on: `direct_proxy: flycast` goes through the Flycast address with
// fly-force-instance-id, which wakes the Machine; `direct_proxy: vm` dials its private address, which a suspended
// Machine does not have, and must then keep the user on it rather than move them away from their data.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'tap'
import { request, sha256, startEdge } from './fixtures.js'
import { CookieJarClient, cookieFrom, demoConfig, startDemoFly, traced, waitForLogLines } from './e2e-helpers.js'

interface WhoAmI { machine: string }
interface Upload { machine: string, bytes: number, sha256: string }

const UPLOAD_BYTES = 5_000_000
const BODY = randomBytes(UPLOAD_BYTES)
const DIGEST = sha256(BODY)
const DEBUG_HEADER = 'x-navigator-sticky'
/** Far below anything a hang on the suspended Machine would take (the demo's replay_timeout is 5 s). */
const PROMPT_MS = 4_000

function upload (client: CookieJarClient): ReturnType<CookieJarClient['get']> {
  return client.get('/app/upload', { method: 'POST', body: BODY, headers: { 'content-type': 'application/octet-stream' } })
}

for (const fallback of ['maintenance', 'route_to_available']) {
  const edits: Array<[string, string]> = [['fallback_mode: maintenance', `fallback_mode: ${fallback}`]]

  test(`direct_proxy: flycast, fallback_mode: ${fallback}: a 5 MB upload pinned to a suspended Machine wakes it and arrives byte-identical`, async (t) => {
    const config = await demoConfig(t, [...edits, ['replay_timeout: 5s', 'replay_timeout: 5s\n      direct_proxy: flycast']])
    const fly = await startDemoFly(t, { config })
    const client = new CookieJarClient(fly.edge.url)
    const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
    await fly.edge.suspendMachine(pinned)
    t.equal(fly.edge.machine(pinned)?.state, 'suspended')

    const { reply, routes, replays, edgeErrors } = await traced(fly, () => upload(client))
    t.equal(reply.status, 200)
    const received = reply.json<Upload>()
    t.equal(received.machine, pinned, 'the tenant on the pinned Machine took it')
    t.equal(received.bytes, UPLOAD_BYTES)
    t.equal(received.sha256, DIGEST, 'byte-identical: the sha256 the tenant computed')
    t.equal(fly.edge.machine(pinned)?.state, 'started', 'the Flycast delivery woke it')
    t.equal(cookieFrom(reply), pinned, 'the pinned Machine set the cookie again')
    t.equal(client.cookie, pinned)
    t.same(routes.filter((r) => !r.flycast).map((r) => r.machineId === pinned), [false], 'the upload first landed on one other Machine')
    t.same(routes.filter((r) => r.flycast).map((r) => r.machineId), [pinned], 'which sent it through Flycast to the pinned one')
    t.same(replays, [], 'nothing replayed')
    t.same(edgeErrors, [])
  })

  test(`direct_proxy: vm, fallback_mode: ${fallback}: a 5 MB upload pinned to a suspended Machine gets 503 with Retry-After and the cookie unchanged`, async (t) => {
    const config = await demoConfig(t, [...edits, ['replay_timeout: 5s', 'replay_timeout: 5s\n      direct_proxy: vm\n      debug_header: true']])
    const fly = await startDemoFly(t, { config })
    const client = new CookieJarClient(fly.edge.url)
    const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
    await fly.edge.suspendMachine(pinned)

    const { reply, routes, replays, edgeErrors, ms } = await traced(fly, () => upload(client))
    t.equal(reply.status, 503, `the maintenance page, whatever fallback_mode (${fallback}) says`)
    t.ok(Number(reply.headers['retry-after']) > 0, `Retry-After: ${String(reply.headers['retry-after'])}`)
    t.equal(reply.headers['cache-control'], 'no-store')
    t.equal(reply.headers['fly-edge-error'], undefined, 'from Navigator, not the edge')
    t.equal(reply.headers[DEBUG_HEADER], `fallback; machine=${pinned}`)
    t.equal(cookieFrom(reply), null, 'no Set-Cookie')
    t.equal(client.cookie, pinned, 'so the client still holds the pinned Machine\'s cookie')
    t.ok(ms < PROMPT_MS, `promptly (${ms} ms): the private address refused at once`)
    t.equal(fly.edge.machine(pinned)?.state, 'suspended', 'nothing on the private network wakes it')
    t.equal(routes.length, 1, 'one delivery')
    t.ok(routes[0].machineId !== pinned && !routes[0].flycast, 'to another Machine, on the public edge')
    t.same(replays, [])
    t.same(edgeErrors, [])
    const warnings = (await waitForLogLines(fly, 'machine unavailable', 1, routes[0].machineId)).map((line) => JSON.parse(line.slice(line.indexOf(' ') + 1)))
    t.ok(warnings.some((w) => w.machine === pinned && typeof w.hint === 'string' && w.hint.includes('flycast')), 'that Machine said why, with the flycast hint')

    // The user's data is on the pinned Machine: once it is back, the same cookie takes the same upload there.
    await fly.edge.startMachine(pinned)
    const again = await upload(client)
    t.equal(again.status, 200)
    t.same(again.json<Upload>(), { machine: pinned, bytes: UPLOAD_BYTES, sha256: DIGEST })
  })
}

// What made the vm cases above fail one time in two before the edge said keep-alive to Machines: a Machine's Node
// server that answers a request it has not read, on a connection the client asked to close, closes the socket at once
// and the kernel resets it under the rest of the body; the edge, still writing, lost the answer and replied 502.
test('a Machine that answers a 5 MB upload before reading it: the answer reaches the client every time, never a 502', async (t) => {
  const received: Array<string | undefined> = []
  const machine = http.createServer((req, res) => {
    received.push(req.headers.connection)
    res.writeHead(503, { 'retry-after': '5', 'content-type': 'text/plain' })
    res.end('asleep\n')
  })
  await new Promise<void>((resolve) => machine.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { machine.closeAllConnections(); machine.close() })
  const edge = await startEdge(t, { app: 'early', machines: [{ id: 'm1', url: `http://127.0.0.1:${(machine.address() as AddressInfo).port}` }] })
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) {
    statuses.push((await request(`${edge.url}/upload`, { method: 'POST', body: BODY, headers: { 'content-type': 'application/octet-stream' } })).status)
  }
  t.same(statuses, Array(10).fill(503))
  t.same(received, Array(10).fill('keep-alive'), 'the edge asks the Machine to keep the connection, as Fly\'s pooled connections do')
})

// With connections kept alive, a Machine would otherwise wait for the rest of an abandoned body until its own timeout.
test('a client that goes away in the middle of a large upload ends the Machine\'s request too', async (t) => {
  let ended: (how: string) => void = () => {}
  const machineSaw = new Promise<string>((resolve) => { ended = resolve })
  const machine = http.createServer((req) => {
    req.resume()
    req.on('end', () => ended('the whole body'))
    req.on('close', () => { if (!req.complete) ended('an aborted body') })
  })
  await new Promise<void>((resolve) => machine.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { machine.closeAllConnections(); machine.close() })
  const edge = await startEdge(t, { app: 'abandoned', machines: [{ id: 'm1', url: `http://127.0.0.1:${(machine.address() as AddressInfo).port}` }] })
  const client = http.request(`${edge.url}/upload`, { method: 'POST', agent: false, headers: { 'content-length': UPLOAD_BYTES } })
  client.on('error', () => {})
  client.write(BODY.subarray(0, 2_000_000), () => { setTimeout(() => client.destroy(), 100) })
  const timeout = new Promise<string>((resolve) => { setTimeout(resolve, 3000, 'nothing within 3 s').unref() })
  t.equal(await Promise.race([machineSaw, timeout]), 'an aborted body')
})
