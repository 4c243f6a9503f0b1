import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import { ASLEEP_HINT } from '@navigator/sticky-sessions'
import { COOKIE, deadAddress, MB, send, served, sha256, startMachines, startRecorder, stickyCookie } from './fly-fidelity-helpers.js'

// A body too large to replay is proxied by Navigator to the cookie's Machine. Through real navigators:
// - direct_proxy: flycast sends it to the app's Flycast address (flycast_url here: a plain server standing in for
//   Fly's proxy) with fly-force-instance-id, which is how Fly starts a sleeping Machine for it;
// - direct_proxy: vm cannot wake a Machine: one that cannot be reached but that discovery still lists gets the
//   maintenance page with Retry-After and keeps its cookie, in both fallback modes; one discovery does not list is gone.

test('flycast: the body goes to flycast_url with fly-force-instance-id and the loop marker', async (t) => {
  const flycast = await startRecorder(t)
  const { m1 } = await startMachines(t, ['m1'], {
    m1: { sticky: ['direct_proxy: flycast', `flycast_url: "${flycast.url}"`], extraPeers: { m2: await deadAddress() } }
  })
  const body = randomBytes(MB + 1)
  const answer = await send(m1.address, '/app/upload?x=1', { body, headers: { cookie: `${COOKIE}=m2` } })
  t.equal(answer.status, 200, 'the answer of whatever Fly delivered to')
  t.same(answer.json(), { recorded: 1 })
  t.equal(flycast.requests.length, 1)
  const [request] = flycast.requests
  t.equal(request.url, '/app/upload?x=1')
  t.equal(request.headers['fly-force-instance-id'], 'm2', 'Fly delivers to m2, starting it if it sleeps')
  t.equal(request.headers['x-navigator-via'], 'm1')
  t.equal(request.size, MB + 1)
  t.equal(request.sha256, sha256(body), 'byte-identical')
  t.match(request.headers.cookie, `${COOKIE}=m2`, 'the cookie goes along, so m2 serves it as its own')

  const chunked = await send(m1.address, '/app/upload', { body: randomBytes(4096), headers: { cookie: `${COOKIE}=m2` }, chunked: true })
  t.equal(chunked.status, 200)
  t.equal(flycast.requests[1]?.headers['fly-force-instance-id'], 'm2', 'a chunked body takes the same way')
  const small = await send(m1.address, '/app/upload', { body: randomBytes(MB), headers: { cookie: `${COOKIE}=m2` } })
  t.equal(small.status, 307, 'a body Fly can replay is still replayed')
  t.equal(flycast.requests.length, 2)
  t.same(await served(m1), [], 'nothing was served on m1')
})

test('vm: an unreachable Machine that discovery lists gets 503 + Retry-After, cookie unchanged, in both fallback modes', async (t) => {
  const asleep = await deadAddress()
  const { m1, m3 } = await startMachines(t, ['m1', 'm3'], {
    m1: { sticky: ['fallback_mode: maintenance'], extraPeers: { m2: asleep } },
    m3: { sticky: ['fallback_mode: route_to_available'], extraPeers: { m2: asleep } }
  })
  for (const machine of [m1, m3]) {
    const answer = await send(machine.address, '/app/upload', { body: randomBytes(MB + 1), headers: { cookie: `${COOKIE}=m2` } })
    t.equal(answer.status, 503, `${machine.id}: the maintenance page`)
    t.equal(answer.headers['retry-after'], '5')
    t.equal(answer.headers['cache-control'], 'no-store')
    t.equal(stickyCookie(answer), undefined, `${machine.id}: the cookie still names m2`)
    const warning = await machine.waitForLog((line) => line.msg === 'machine unavailable' && line.machine === 'm2')
    t.equal(warning.level, 40)
    t.equal(warning.hint, ASLEEP_HINT, 'the warning says why, and that direct_proxy: flycast would wake it')
    t.same(await served(machine), [], `${machine.id} served nothing`)
  }
})

test('vm: a Machine that discovery does not list is gone: the cookie is rejected and the request served here', async (t) => {
  const { m1 } = await startMachines(t, ['m1'])
  const body = randomBytes(MB + 1)
  const answer = await send(m1.address, '/app/upload', { body, headers: { cookie: `${COOKIE}=m9` } })
  t.equal(answer.status, 200)
  t.match(answer.json(), { machine: 'm1', size: MB + 1, sha256: sha256(body) })
  t.match(stickyCookie(answer), /^_navigator_machine=m1;/)
})
