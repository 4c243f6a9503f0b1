import { test } from 'tap'
import { COOKIE, send, served, stickyCookie, startMachines } from './fly-fidelity-helpers.js'

// Fly caches no replay that carries state, a timeout or a fallback. Through real navigators: with replay_cache the
// sticky replay is `prefer_instance=T` alone; a request that Fly could not deliver to T arrives elsewhere with
// fly-preferred-instance-unavailable and gets fallback_mode, in both modes; without the cache the replay is the
// hard `instance=T` with our state, a timeout in whole seconds or milliseconds, and force_self.

test('replay_cache: prefer_instance=T alone; fly-preferred-instance-unavailable gets fallback_mode in both modes', async (t) => {
  const { m1, m2 } = await startMachines(t, ['m1', 'm2', 'm3'], {
    m1: { sticky: ['replay_cache: true', 'fallback_mode: maintenance'] },
    m2: { sticky: ['replay_cache: true', 'fallback_mode: route_to_available'] }
  })
  const replay = await send(m1.address, '/app/page', { headers: { cookie: `${COOKIE}=m3` } })
  t.equal(replay.status, 307)
  t.equal(replay.headers['fly-replay'], 'prefer_instance=m3', 'cacheable: no state, timeout or fallback')
  t.equal(stickyCookie(replay), undefined)

  // Fly delivered the request to m1 instead of m3 (m3 not found, or at its hard_limit).
  const diverted = { cookie: `${COOKIE}=m3`, 'fly-preferred-instance-unavailable': 'm3' }
  const kept = await send(m1.address, '/app/page', { headers: diverted })
  t.equal(kept.status, 503, 'maintenance: the maintenance page')
  t.equal(kept.headers['retry-after'], '5')
  t.equal(kept.headers['fly-replay'], undefined, 'never replayed again')
  t.equal(stickyCookie(kept), undefined, 'the cookie still names m3, where the data is')
  await m1.waitForLog((line) => line.msg === 'machine unavailable' && line.machine === 'm3')

  const moved = await send(m2.address, '/app/page', { headers: diverted })
  t.equal(moved.status, 200, 'route_to_available: served here')
  t.equal(moved.json().machine, 'm2')
  t.match(stickyCookie(moved), /^_navigator_machine=m2;/, 'and re-pinned here')
  t.same(await served(m1), [])
  t.same(await served(m2), ['served m2 GET /app/page 0'])
})

test('without the cache: instance=T;state=nav-sticky;timeout=<whole seconds or ms>;fallback=force_self', async (t) => {
  const { m1, m2 } = await startMachines(t, ['m1', 'm2'], {
    m1: { sticky: ['replay_timeout: 1m30s'] },
    m2: { sticky: ['replay_timeout: 1.5s'] }
  })
  const seconds = await send(m1.address, '/app/page', { headers: { cookie: `${COOKIE}=m2` } })
  t.equal(seconds.status, 307)
  t.equal(seconds.headers['fly-replay'], 'instance=m2;state=nav-sticky;timeout=90s;fallback=force_self', 'never 1m30s')
  const millis = await send(m2.address, '/app/page', { headers: { cookie: `${COOKIE}=m1` } })
  t.equal(millis.headers['fly-replay'], 'instance=m1;state=nav-sticky;timeout=1500ms;fallback=force_self', 'never 1.5s')
  const failed = await send(m1.address, '/app/page', { headers: { cookie: `${COOKIE}=m2`, 'fly-preferred-instance-unavailable': 'm2' } })
  t.equal(failed.status, 503, 'the header means the same without the cache')
})

test('fly-replay-cache-status is logged at debug', async (t) => {
  const { m1 } = await startMachines(t, ['m1'], { m1: { sticky: ['replay_cache: true'], env: { LOG_LEVEL: 'debug' } } })
  const hit = await send(m1.address, '/app/page', { headers: { cookie: `${COOKIE}=m1`, 'fly-replay-cache-status': 'hit' } })
  t.equal(hit.status, 200)
  const line = await m1.waitForLog((entry) => entry.msg === 'fly-replay-cache-status')
  t.equal(line.level, 20)
  t.equal(line.status, 'hit')
})
