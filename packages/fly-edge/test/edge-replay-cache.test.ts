// Session-based replay caching, as Fly's proxy does it for [[http_service.http_options.replay_cache]]:
// https://fly.io/docs/networking/dynamic-request-routing/#session-based-replay-caching
import { randomBytes } from 'node:crypto'
import { test } from 'tap'
import { ReplayCache, parseReplayCacheRule } from '../src/replay-cache.js'
import type { ReplayCacheRule } from '../src/replay-cache.js'
import {
  fields, replayWith, request, routesOf, sha256, spec, startEdge, startTestMachine, type MachineHandler
} from './fixtures.js'

const COOKIE_RULE: ReplayCacheRule = { pathPrefix: '/', ttlSeconds: 60, type: 'cookie', name: 'sid' }

/** Replays every request that the edge delivers to it directly (no fly-replay-src, no cache verdict). */
function replayFirst (value: string): MachineHandler {
  return (req, res) => {
    if (req.headers['fly-replay-src'] !== undefined || req.headers['fly-replay-cache-status'] === 'hit') return false
    res.writeHead(307, { 'fly-replay': value })
    res.end()
    return true
  }
}

// The edge's app has one Machine, the router, so every request that is not a cache hit reaches it first; the targets
// belong to the app "worker".
async function routerAndWorkers (t: Parameters<Parameters<typeof test>[1]>[0], replay: string, rules: ReplayCacheRule[], extra = {}) {
  const router = await startTestMachine(t, 'router', replayFirst(replay))
  const w1 = await startTestMachine(t, 'w1')
  const w2 = await startTestMachine(t, 'w2')
  const edge = await startEdge(t, {
    app: 'demo', machines: [spec(router), spec(w1, 'iad', 'worker'), spec(w2, 'iad', 'worker')], replayCache: rules, ...extra
  })
  return { router, w1, w2, edge, routes: routesOf(edge) }
}

test('a replay for a request with the cookie is cached: the next one goes straight to the target, marked hit, without fly-replay-src', async (t) => {
  const { router, w1, edge, routes } = await routerAndWorkers(t, 'instance=w1;app=worker', [COOKIE_RULE])
  const first = (await request(`${edge.url}/app/page`, { headers: { cookie: 'other=1; sid=alice' } })).json()
  t.equal(first.machine, 'w1')
  t.equal(first.headers['fly-replay-cache-status'], 'miss', 'the replayed request was not served from the cache')
  t.equal(fields(first.headers['fly-replay-src']).instance, 'router')
  for (let i = 0; i < 3; i++) {
    const reply = await request(`${edge.url}/app/other?i=${i}`, { headers: { cookie: 'sid=alice' } })
    const seen = reply.json()
    t.equal(seen.machine, 'w1')
    t.equal(seen.url, `/app/other?i=${i}`)
    t.equal(seen.headers['fly-replay-cache-status'], 'hit')
    t.notOk(seen.headers['fly-replay-src'], 'a cached replay carries no fly-replay-src, as on Fly')
  }
  t.equal(router.received.length, 1, 'the router was consulted once')
  t.equal(w1.received.length, 4)
  t.same(routes.slice(-1).map((r) => [r.machineId, r.replayed, r.replayCache]), [['w1', false, 'hit']])
  const forced = (await request(edge.url, { headers: { cookie: 'sid=alice', 'fly-force-instance-id': 'router' } })).json()
  t.equal(router.received.length, 2, 'fly-force-instance-id wins over a cached replay')
  t.equal(forced.headers['fly-replay-cache-status'], 'miss', 'and the router\'s replay is an ordinary one')
})

test('the cache is keyed by the cookie value: another session, or none, still goes to the router', async (t) => {
  const { router, edge } = await routerAndWorkers(t, 'instance=w1;app=worker', [COOKIE_RULE])
  await request(edge.url, { headers: { cookie: 'sid=alice' } })
  const bob = (await request(edge.url, { headers: { cookie: 'sid=bob' } })).json()
  t.equal(bob.headers['fly-replay-cache-status'], 'miss')
  const anonymous = (await request(edge.url)).json()
  t.notOk(anonymous.headers['fly-replay-cache-status'], 'a request without the cookie has no cache verdict at all')
  t.equal(router.received.length, 3)
})

test('a header rule keys on the header; the longest matching path_prefix decides which rule applies', async (t) => {
  const rules: ReplayCacheRule[] = [COOKIE_RULE, { pathPrefix: '/api/*', ttlSeconds: 60, type: 'header', name: 'Authorization' }]
  const { router, edge } = await routerAndWorkers(t, 'instance=w2;app=worker', rules)
  const auth = { authorization: 'Bearer token-1' }
  await request(`${edge.url}/api/items`, { headers: auth })
  const hit = (await request(`${edge.url}/api`, { headers: auth })).json()
  t.equal(hit.machine, 'w2')
  t.equal(hit.headers['fly-replay-cache-status'], 'hit', '/api matches the /api/* rule too')
  const elsewhere = (await request(`${edge.url}/apis`, { headers: auth })).json()
  t.notOk(elsewhere.headers['fly-replay-cache-status'], '/apis is outside /api/*, and the / rule needs the cookie')
  // The /api rule takes precedence over /, so the cookie alone keys nothing under /api.
  await request(`${edge.url}/api/items`, { headers: { cookie: 'sid=carol' } })
  const cookieOnly = (await request(`${edge.url}/api/items`, { headers: { cookie: 'sid=carol' } })).json()
  t.notOk(cookieOnly.headers['fly-replay-cache-status'])
  t.equal(router.received.length, 4)
})

test('a replay with state, timeout or fallback is not cached; its replayed request says miss', async (t) => {
  for (const replay of ['instance=w1;app=worker;state=s', 'instance=w1;app=worker;timeout=2s', 'instance=w1;app=worker;fallback=force_self']) {
    await t.test(replay, async (t) => {
      const { router, edge } = await routerAndWorkers(t, replay, [COOKIE_RULE])
      for (let i = 0; i < 2; i++) {
        const seen = (await request(edge.url, { headers: { cookie: 'sid=alice' } })).json()
        t.equal(seen.machine, 'w1')
        t.equal(seen.headers['fly-replay-cache-status'], 'miss')
        t.ok(seen.headers['fly-replay-src'])
      }
      t.equal(router.received.length, 2, 'the router answered both requests')
    })
  }
})

test('fly-replay-cache-control: skip bypasses the cache where allow_bypass is set, and is ignored where it is not', async (t) => {
  const skip = { cookie: 'sid=alice', 'fly-replay-cache-control': 'skip' }
  await t.test('allow_bypass = true', async (t) => {
    const { router, w1, edge } = await routerAndWorkers(t, 'instance=w1;app=worker', [{ ...COOKIE_RULE, allowBypass: true }])
    await request(edge.url, { headers: { cookie: 'sid=alice' } })
    const bypassed = (await request(edge.url, { headers: skip })).json()
    t.equal(bypassed.machine, 'w1')
    t.equal(bypassed.headers['fly-replay-cache-status'], 'bypass')
    t.equal(router.received.length, 2, 'the router was consulted again')
    t.equal((await request(edge.url, { headers: { cookie: 'sid=alice' } })).json().headers['fly-replay-cache-status'], 'hit',
      'the entry survives a bypass')
    t.equal(w1.received.length, 3)
  })
  await t.test('allow_bypass = false (the default)', async (t) => {
    const { router, edge } = await routerAndWorkers(t, 'instance=w1;app=worker', [COOKIE_RULE])
    await request(edge.url, { headers: { cookie: 'sid=alice' } })
    t.equal((await request(edge.url, { headers: skip })).json().headers['fly-replay-cache-status'], 'hit')
    t.equal(router.received.length, 1)
  })
})

test('a cached prefer_instance whose Machine is gone goes to another Machine with fly-preferred-instance-unavailable', async (t) => {
  const { router, w1, edge } = await routerAndWorkers(t, 'prefer_instance=w1;app=worker', [COOKIE_RULE])
  t.equal((await request(edge.url, { headers: { cookie: 'sid=alice' } })).json().machine, 'w1')
  await w1.close()
  const seen = (await request(edge.url, { headers: { cookie: 'sid=alice' } })).json()
  t.equal(seen.machine, 'w2')
  t.equal(seen.headers['fly-preferred-instance-unavailable'], 'w1')
  t.equal(seen.headers['fly-replay-cache-status'], 'hit', 'still the cached replay: prefer_instance has its own fallback')
  t.equal(router.received.length, 1)
})

test('a cached instance that cannot be reached is forgotten and the app is consulted again', async (t) => {
  await t.test('the Machine is stopped and cannot be started', async (t) => {
    const { router, edge } = await routerAndWorkers(t, 'instance=w1;app=worker', [COOKIE_RULE], { autostart: false })
    await request(edge.url, { headers: { cookie: 'sid=alice' } })
    await edge.stopMachine('w1')
    router.handler = replayFirst('instance=w2;app=worker')
    const started = Date.now()
    const seen = (await request(edge.url, { headers: { cookie: 'sid=alice' } })).json()
    t.equal(seen.machine, 'w2')
    t.equal(seen.headers['fly-replay-cache-status'], 'miss', 'the router was asked again and replayed')
    // Trying it would hold the request for the replay timeout (5 s by default); a loaded machine may take a while.
    t.ok(Date.now() - started < 4000, `at once: a stopped Machine is no candidate (${Date.now() - started} ms)`)
    t.equal((await request(edge.url, { headers: { cookie: 'sid=alice' } })).json().headers['fly-replay-cache-status'], 'hit')
    t.equal(router.received.length, 2)
  })
  await t.test('the Machine refuses connections until the replay timeout', async (t) => {
    const { router, w1, edge } = await routerAndWorkers(t, 'instance=w1;app=worker', [COOKIE_RULE], { replayTimeoutMs: 300 })
    await request(edge.url, { headers: { cookie: 'sid=alice' } })
    await w1.close()
    router.handler = replayFirst('instance=w2;app=worker')
    const seen = (await request(edge.url, { headers: { cookie: 'sid=alice' } })).json()
    t.equal(seen.machine, 'w2')
    t.equal(router.received.length, 2)
  })
})

test('fly-replay-cache: invalidate from the target forgets the entry', async (t) => {
  const { router, w1, edge } = await routerAndWorkers(t, 'instance=w1;app=worker', [COOKIE_RULE])
  await request(edge.url, { headers: { cookie: 'sid=alice' } })
  w1.handler = (req, res) => {
    if (req.headers['fly-replay-cache-status'] !== 'hit') return false
    res.writeHead(307, { 'fly-replay': 'instance=router;app=demo', 'fly-replay-cache': 'invalidate' })
    res.end()
    return true
  }
  const back = (await request(edge.url, { headers: { cookie: 'sid=alice' } })).json()
  t.equal(back.machine, 'router', 'the target sent the request back to the origin')
  t.equal(fields(back.headers['fly-replay-src']).instance, 'w1')
  const next = (await request(edge.url, { headers: { cookie: 'sid=alice' } })).json()
  t.equal(next.headers['fly-replay-cache-status'], 'miss', 'the next request is not a hit')
  t.equal(router.received.length, 3)
})

test('a cache hit needs no replay, so a body over 1 MB reaches the cached target whole', async (t) => {
  const { w1, edge } = await routerAndWorkers(t, 'instance=w1;app=worker', [COOKIE_RULE])
  await request(edge.url, { headers: { cookie: 'sid=alice' } })
  const body = randomBytes(2 * 1024 * 1024)
  const reply = await request(`${edge.url}/upload`, { method: 'POST', body, headers: { cookie: 'sid=alice' } })
  t.equal(reply.status, 200)
  t.equal(reply.json().bodySha256, sha256(body))
  t.equal(w1.received.at(-1)?.headers['fly-replay-cache-status'], 'hit')
  const uncached = await request(`${edge.url}/upload`, { method: 'POST', body, headers: { cookie: 'sid=bob' } })
  t.equal(uncached.headers['fly-edge-error'], 'NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE', 'without the cache it could not be replayed')
})

test('a client cannot forge fly-replay-cache-status', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)] })
  const seen = (await request(edge.url, { headers: { 'fly-replay-cache-status': 'hit' } })).json()
  t.notOk(seen.headers['fly-replay-cache-status'])
})

test('entries live ttl_seconds, apart per Host, rule and value', async (t) => {
  let now = 1_000_000
  const cache = new ReplayCache([COOKIE_RULE], () => now)
  const alice = cache.match('example.com:8080', '/x', { cookie: 'sid=alice' })
  const onFlycast = cache.match('example.com:9090', '/x', { cookie: 'sid=alice' })
  if (alice === null || onFlycast === null) throw new Error('the rule should match')
  t.not(alice.key, onFlycast.key, 'each Host keeps its own cache')
  cache.set(alice, { elsewhere: false, instance: 'w1' })
  t.same(cache.get(alice.key), { elsewhere: false, instance: 'w1' })
  t.equal(cache.get(onFlycast.key), undefined)
  now += 59_999
  t.ok(cache.get(alice.key))
  now += 1
  t.equal(cache.get(alice.key), undefined, 'gone after ttl_seconds')
  t.equal(cache.size, 0)
})

test('rules are checked like fly.toml: ttl_seconds at least 10, cookie or header, a name; the CLI form uses fly.toml names', async (t) => {
  t.throws(() => new ReplayCache([{ ...COOKIE_RULE, ttlSeconds: 5 }]), { code: 'NAV_FLY_EDGE_INVALID_OPTION', message: /at least|>= 10/ })
  t.throws(() => new ReplayCache([{ ...COOKIE_RULE, type: 'query' as 'cookie' }]), { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
  t.throws(() => new ReplayCache([{ ...COOKIE_RULE, name: 'bad name' }]), { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
  t.throws(() => new ReplayCache([{ ...COOKIE_RULE, pathPrefix: 'no-slash' }]), { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
  t.same(parseReplayCacheRule('path_prefix=example.com/api,ttl_seconds=300,type=header,name=Authorization,allow_bypass=true'),
    { pathPrefix: 'example.com/api', ttlSeconds: 300, type: 'header', name: 'Authorization', allowBypass: true })
  t.throws(() => parseReplayCacheRule('path_prefix=/,ttl=60,type=cookie,name=sid'), { code: 'NAV_FLY_EDGE_INVALID_OPTION' })
  t.throws(() => parseReplayCacheRule('path_prefix=/,type=cookie,name=sid'), { message: /ttl_seconds/ })
  const hosted = new ReplayCache([{ ...COOKIE_RULE, pathPrefix: 'example.com/app' }])
  t.ok(hosted.match('example.com:8080', '/app/x', { cookie: 'sid=a' }), 'a host in path_prefix matches without the port')
  t.equal(hosted.match('other.com', '/app/x', { cookie: 'sid=a' }), null)
})
