// Fly's session replay cache in front of three real navigator Machines with `replay_cache: true`: the edge caches the
// `prefer_instance` replay keyed on the sticky cookie (or, for clients without cookies, on `header_name`'s header),
// and Navigator has to stay correct when the cached Machine sleeps or disappears, where the cache still holds it for
// its whole TTL.
import { test, type Test } from 'tap'
import type { ReplayCacheRule } from '../src/replay-cache.js'
import { request } from './fixtures.js'
import {
  COOKIE, CookieJarClient, cookieFrom, demoConfig, destroyMachine, killMachine, startDemoFly, traced, waitForLogLines, type DemoFly
} from './e2e-helpers.js'

interface WhoAmI { machine: string }

// Long enough that a user stranded by a stale entry would stay stranded for the whole test.
const TTL_SECONDS = 300
const COOKIE_RULE: ReplayCacheRule = { pathPrefix: '/', ttlSeconds: TTL_SECONDS, type: 'cookie', name: COOKIE }
// The docs' example; names under x-navigator- are Navigator's own and refused by the config loader.
const HEADER = 'x-machine'
const REPLAY_LOG_LINE = 'Routing to machine via Fly-Replay'
const DEBUG_HEADER = 'x-navigator-sticky'
/**
 * The edge's `replayTimeoutMs`, which bounds a cached replay (it has no timeout of its own): long enough for a killed
 * Machine's cold start (a navigator process and its tenant) on a busy computer, and far above PROMPT_MS, so that an
 * answer within PROMPT_MS was not a wait for an unavailable Machine.
 */
const REPLAY_TIMEOUT_MS = 30_000
const PROMPT_MS = 10_000

/** The demo's config with `replay_cache: true` and the debug header (which says what each Machine decided), edited. */
function cacheConfig (t: Test, edits: Array<[string, string]> = []): Promise<string> {
  return demoConfig(t, [['replay_timeout: 5s', 'replay_timeout: 5s\n      replay_cache: true\n      debug_header: true'], ...edits])
}

/** The request's own deliveries were never more than one replay deep, and the edge answered no error. */
function noLoops (t: Test, fly: DemoFly): void {
  t.ok(fly.routes.every((r) => r.replays <= 1), `at most one replay per request (deepest: ${Math.max(...fly.routes.map((r) => r.replays))})`)
  t.same(fly.edgeErrors, [], 'no edge errors')
}

/** Pins a cookie-jar client, then sends requests until the edge has replayed one to its Machine and cached that. */
async function pinAndCache (t: Test, fly: DemoFly): Promise<{ client: CookieJarClient, pinned: string }> {
  const client = new CookieJarClient(fly.edge.url)
  const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
  t.equal(client.cookie, pinned, 'the first answer pins the client to the Machine that served it')
  // Round robin gives the cookie's requests to every Machine in turn: within three, one lands elsewhere and is replayed.
  for (let i = 0; i < 3 && fly.replays.length === 0; i++) t.equal((await client.get('/app/whoami')).json<WhoAmI>().machine, pinned)
  t.equal(fly.replays.length, 1, 'one request was replayed to the pinned Machine')
  return { client, pinned }
}

test('replay cache, fallback_mode maintenance: one replay then cache hits; a suspended or killed pinned Machine is woken or started; a destroyed one gives the maintenance page at once, cookie kept', async (t) => {
  const fly = await startDemoFly(t, { config: await cacheConfig(t), edge: { replayCache: [COOKIE_RULE], replayTimeoutMs: REPLAY_TIMEOUT_MS } })
  const { client, pinned } = await pinAndCache(t, fly)

  await t.test('the pinned Machine up: every later request is a cache hit served by it, never replayed again', async (t) => {
    const from = fly.routes.length
    for (let i = 0; i < 30; i++) {
      const reply = await client.get('/app/whoami')
      t.equal(reply.status, 200)
      t.equal(reply.json<WhoAmI>().machine, pinned)
    }
    const later = fly.routes.slice(from)
    t.equal(later.length, 30, 'one delivery per request')
    t.ok(later.every((r) => r.machineId === pinned && r.replayCache === 'hit' && !r.replayed && !r.answeredWithReplay), 'each a hit on the pinned Machine')
    t.equal(fly.replays.length, 1, 'still the one replay at the edge')
    t.equal((await waitForLogLines(fly, REPLAY_LOG_LINE)).length, 1, 'and the Machines logged one replay between them')
  })

  await t.test('the pinned Machine suspended: the next request wakes it and is served by it', async (t) => {
    await fly.edge.suspendMachine(pinned)
    t.equal(fly.edge.machine(pinned)?.state, 'suspended')
    const { reply, routes, replays } = await traced(fly, () => client.get('/app/whoami'))
    t.equal(reply.status, 200)
    t.equal(reply.json<WhoAmI>().machine, pinned)
    t.equal(fly.edge.machine(pinned)?.state, 'started', 'the cached prefer_instance resumed it')
    t.same(routes.map((r) => [r.machineId, r.replayCache, r.preferredInstanceUnavailable]), [[pinned, 'hit', undefined]], 'delivered once, straight to it')
    t.same(replays, [], 'no replay')
    t.equal(client.cookie, pinned)
  })

  await t.test('the pinned Machine killed: the next request starts it again (autostart) and is served by it', async (t) => {
    await killMachine(fly, pinned)
    t.equal(fly.edge.machine(pinned)?.state, 'stopped', 'the edge saw its process end')
    const { reply, routes, replays, edgeErrors } = await traced(fly, () => client.get('/app/whoami'))
    t.equal(reply.status, 200)
    t.equal(reply.json<WhoAmI>().machine, pinned)
    t.equal(fly.edge.machine(pinned)?.state, 'started')
    t.same(routes.map((r) => [r.machineId, r.replayCache, r.preferredInstanceUnavailable]), [[pinned, 'hit', undefined]])
    t.same(replays, [])
    t.same(edgeErrors, [])
    t.equal(client.cookie, pinned)
  })

  await t.test('the pinned Machine destroyed: the maintenance page at once, cookie kept, never an edge error', async (t) => {
    await destroyMachine(fly, pinned)
    for (let i = 0; i < 3; i++) {
      // The cache still names the destroyed Machine for its TTL; each request must still get Navigator's answer.
      const { reply, routes, replays, edgeErrors, ms } = await traced(fly, () => client.get('/app/whoami'))
      t.equal(reply.status, 503, 'the maintenance page')
      t.ok(reply.headers['retry-after'], 'with Retry-After')
      t.equal(reply.headers['cache-control'], 'no-store')
      t.equal(reply.headers['fly-edge-error'], undefined, 'from Navigator, not the edge')
      t.equal(reply.headers[DEBUG_HEADER], `fallback; machine=${pinned}`)
      t.equal(cookieFrom(reply), null, 'no Set-Cookie: the cookie stays on the pinned Machine')
      t.equal(client.cookie, pinned)
      t.equal(routes.length, 1, 'delivered once')
      t.not(routes[0].machineId, pinned, 'to another Machine')
      t.equal(routes[0].preferredInstanceUnavailable, pinned, 'with fly-preferred-instance-unavailable')
      t.equal(routes[0].replayCache, 'hit', 'still the cached entry')
      t.same(replays, [], 'nothing replayed')
      t.same(edgeErrors, [])
      t.ok(ms < PROMPT_MS, `answered promptly (${ms} ms), not after a replay timeout`)
    }
    const stranger = await request(`${fly.edge.url}/app/whoami`)
    t.equal(stranger.status, 200, 'a visitor without the cookie is served')
    t.not(stranger.json<WhoAmI>().machine, pinned)
    noLoops(t, fly)
  })
})

test('replay cache, fallback_mode route_to_available: a destroyed pinned Machine\'s user is served elsewhere at once and re-pinned, then stays there', async (t) => {
  const config = await cacheConfig(t, [['fallback_mode: maintenance', 'fallback_mode: route_to_available']])
  const fly = await startDemoFly(t, { config, edge: { replayCache: [COOKIE_RULE], replayTimeoutMs: REPLAY_TIMEOUT_MS } })
  const { client, pinned } = await pinAndCache(t, fly)
  for (let i = 0; i < 5; i++) t.equal((await client.get('/app/whoami')).json<WhoAmI>().machine, pinned)

  await destroyMachine(fly, pinned)
  const { reply, routes, replays, edgeErrors, ms } = await traced(fly, () => client.get('/app/whoami'))
  t.equal(reply.status, 200, 'the request right after the failure is served')
  const now = reply.json<WhoAmI>().machine
  t.not(now, pinned, 'by another Machine')
  t.equal(cookieFrom(reply), now, 'whose Set-Cookie names it')
  t.equal(reply.headers[DEBUG_HEADER], `re-pinned; machine=${now}`)
  t.same(routes.map((r) => [r.machineId, r.replayCache, r.preferredInstanceUnavailable]), [[now, 'hit', pinned]],
    'the cached entry\'s Machine was unavailable: delivered once, to the Machine that served it')
  t.same(replays, [])
  t.same(edgeErrors, [])
  t.ok(ms < PROMPT_MS, `promptly (${ms} ms)`)

  const from = fly.replays.length
  for (let i = 0; i < 20; i++) {
    const later = await client.get('/app/whoami')
    t.equal(later.status, 200)
    t.equal(later.json<WhoAmI>().machine, now, 'the new session holds')
  }
  t.ok(fly.replays.length - from <= 1, `the new cookie needed at most one replay (${fly.replays.length - from}) before the cache knew it`)
  t.equal(client.cookie, now)
  noLoops(t, fly)
})

test('header_name with the edge caching on that header: a client without a cookie jar that echoes the header stays on one Machine for 50 requests', async (t) => {
  const config = await cacheConfig(t, [['cookie_path: /', `cookie_path: /\n      header_name: ${HEADER}`]])
  const fly = await startDemoFly(t, {
    config, edge: { replayCache: [{ pathPrefix: '/', ttlSeconds: TTL_SECONDS, type: 'header', name: HEADER }] }
  })
  const first = await request(`${fly.edge.url}/app/whoami`)
  const pinned = first.json<WhoAmI>().machine
  let stored = first.headers[HEADER] as string | undefined
  t.equal(stored, pinned, 'the answer names its Machine in the header')
  const from = fly.routes.length
  for (let i = 0; i < 50; i++) {
    // No Cookie header ever: only what the client stored from the last answer.
    const reply = await request(`${fly.edge.url}/app/whoami`, { headers: { [HEADER]: stored } })
    t.equal(reply.status, 200)
    t.equal(reply.json<WhoAmI>().machine, pinned)
    stored = (reply.headers[HEADER] as string | undefined) ?? stored
  }
  t.equal(stored, pinned)
  const routes = fly.routes.slice(from)
  t.equal(fly.replays.length, 1, 'one replay in 50 requests')
  const replayedAt = routes.findIndex((r) => r.replayed)
  t.ok(replayedAt !== -1 && routes[replayedAt].machineId === pinned && routes[replayedAt].replayCache === 'miss', 'the replay reached the pinned Machine')
  const hits = routes.slice(replayedAt + 1)
  t.ok(hits.length >= 45 && hits.every((r) => r.machineId === pinned && r.replayCache === 'hit'), `then cache hits only (${hits.length})`)
  noLoops(t, fly)
})
