import { test } from 'tap'
import { request } from './fixtures.js'
import { COOKIE, CookieJarClient, demoConfig, startDemoFly } from './e2e-helpers.js'

interface WhoAmI { machine: string }

// Navigator with `replay_cache: true` replays a pinned request with `prefer_instance=<machine>` alone (no state,
// timeout or fallback), which the edge's session replay cache, keyed on the sticky cookie, can keep: after one replay
// the pinned client's requests go straight to its Machine.
test('with replay_cache and a cookie rule at the edge, a pinned client is replayed once, then served from the cache', async (t) => {
  const config = await demoConfig(t, [['replay_timeout: 5s', 'replay_timeout: 5s\n      replay_cache: true']])
  const fly = await startDemoFly(t, {
    config, edge: { replayCache: [{ pathPrefix: '/', ttlSeconds: 60, type: 'cookie', name: COOKIE }] }
  })
  const client = new CookieJarClient(fly.edge.url)
  const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
  for (let i = 0; i < 3 && !fly.routes.some((r) => r.replayed); i++) await client.get('/app/whoami')
  const replay = fly.routes.find((r) => r.replayed)
  t.equal(replay?.machineId, pinned, 'a request balanced to another Machine was replayed to the pinned one')
  t.equal(replay?.replayCache, 'miss')
  const before = fly.routes.length
  for (let i = 0; i < 20; i++) {
    const reply = await client.get('/app/whoami')
    t.equal(reply.status, 200)
    t.equal(reply.json<WhoAmI>().machine, pinned)
  }
  const later = fly.routes.slice(before)
  t.equal(later.length, 20, 'one delivery per request: no replay')
  t.ok(later.every((r) => r.machineId === pinned && r.replayCache === 'hit' && !r.answeredWithReplay), 'every one a cache hit')
})

test('the Flycast address reaches a named real Machine with fly-force-instance-id, and balances without it', async (t) => {
  const fly = await startDemoFly(t)
  const ids = fly.launched.machines.map((m) => m.id)
  for (const id of ids) {
    const reply = await request(`${fly.edge.flycastUrl()}/app/whoami`, { headers: { 'fly-force-instance-id': id } })
    t.equal(reply.json<WhoAmI>().machine, id)
  }
  const seen = new Set<string>()
  for (let i = 0; i < ids.length; i++) seen.add((await request(`${fly.edge.flycastUrl()}/app/whoami`)).json<WhoAmI>().machine)
  t.equal(seen.size, ids.length)
  t.ok(fly.routes.every((r) => r.flycast))
})
