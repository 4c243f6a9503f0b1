// A body too large to replay, with a cookie naming a suspended Machine, through three real navigator Machines: with
// `direct_proxy: vm` Navigator dials the Machine's private address, which a suspended Machine does not have (a fast
// fallback, never a hang); with `direct_proxy: flycast` it goes through the edge's Flycast address with
// fly-force-instance-id, which wakes the Machine.
import { randomBytes } from 'node:crypto'
import { test } from 'tap'
import { sha256 } from './fixtures.js'
import { CookieJarClient, demoConfig, startDemoFly } from './e2e-helpers.js'

interface WhoAmI { machine: string }
interface Upload { machine: string, bytes: number, sha256: string }

test('direct_proxy: flycast wakes the suspended pinned Machine for a 2 MiB upload through the Flycast address', async (t) => {
  const config = await demoConfig(t, [['replay_timeout: 5s', 'replay_timeout: 5s\n      direct_proxy: flycast']])
  const fly = await startDemoFly(t, { config })
  const client = new CookieJarClient(fly.edge.url)
  const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
  await fly.edge.suspendMachine(pinned)
  const body = randomBytes(2 * 1024 * 1024)
  const before = fly.routes.length
  const reply = await client.get('/app/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
  t.equal(reply.status, 200)
  const upload = reply.json<Upload>()
  t.equal(upload.machine, pinned)
  t.equal(upload.sha256, sha256(body))
  t.equal(fly.edge.machine(pinned)?.state, 'started', 'the Flycast delivery resumed it')
  const routes = fly.routes.slice(before)
  t.ok(routes.some((r) => r.flycast && r.machineId === pinned && !r.replayed), 'it reached the pinned Machine through Flycast')
  t.ok(routes.some((r) => !r.flycast && r.machineId !== pinned), 'after landing on another Machine first')
})

test('direct_proxy: vm meets a suspended pinned Machine\'s closed private address: a prompt maintenance page, not a hang', async (t) => {
  const fly = await startDemoFly(t)
  const client = new CookieJarClient(fly.edge.url)
  const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
  await fly.edge.suspendMachine(pinned)
  const body = randomBytes(2 * 1024 * 1024)
  const started = Date.now()
  const reply = await client.get('/app/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
  const elapsed = Date.now() - started
  t.equal(reply.status, 503, 'fallback_mode maintenance')
  // Below the demo's replay_timeout (5 s) and the connect timeouts; room for a loaded machine.
  t.ok(elapsed < 4500, `promptly (${elapsed} ms)`)
  t.equal(fly.edge.machine(pinned)?.state, 'suspended', 'nothing on the private network wakes it')
})
