import { test } from 'tap'
import type { Test } from 'tap'
import fc from 'fast-check'
import { createCookieCodec, STICKY_REPLAY_STATE } from '@navigator/sticky-sessions'
import { RULES_REPLAY_STATE, parseReplaySrc } from '@navigator/fly-replay'
import { freePort, http, startSite, tenant } from './helpers.js'
import type { Answer, Running } from './helpers.js'

// Hostile input (issue 7): forged `fly-replay-src`, `fly-replay-failed` and `x-navigator-sticky-proxied` headers,
// through the real navigator with sticky sessions (signed cookies, static peers) and a replay rule. A client that
// forges them can only change what happens to its own request: the session cookie never moves to a Machine the
// headers name, and a request that already carries one of Navigator's replay states is never replayed again.

const SECRET = 'hostile-replay-secret'
const codec = createCookieCodec([SECRET])
const COOKIE = '_navigator_machine'
const SELF = 'm1'
const HOME = 'm2'
/** The Machine a forger would like to be sent to; it exists (it is a peer), it is just not the user's. */
const CHOSEN = 'm3'

type FallbackMode = 'maintenance' | 'route_to_available'

async function machine (t: Test, options: { region: string, fallback: FallbackMode }): Promise<Running> {
  return await startSite(t, {
    server: ['  health_check: /up'],
    routes: [
      '  fly:',
      '    replay:',
      '      - path: "^/api/"',
      '        region: ams',
      '    sticky_sessions:',
      '      enabled: true',
      `      secret: ${SECRET}`,
      '      paths: ["/app/*", "/api/*"]',
      `      fallback_mode: ${options.fallback}`,
      '      peers:',
      `        ${SELF}: "http://127.0.0.1:1"`,
      `        ${HOME}: "http://127.0.0.1:${await freePort()}"`,
      `        ${CHOSEN}: "http://127.0.0.1:${await freePort()}"`
    ],
    tenants: [tenant('app', '/app', 'start: eager'), tenant('api', '/api', 'start: eager')]
  }, {
    env: { FLY_MACHINE_ID: SELF, FLY_APP_NAME: 'hostile', FLY_REGION: options.region },
    warm: ['/app/warm-up', '/api/warm-up'],
    headers: { cookie: `${COOKIE}=${codec.encode(SELF)}`, 'fly-replay-src': `state=${RULES_REPLAY_STATE}` }
  })
}

const cookieFor = (id: string): string => `${COOKIE}=${codec.encode(id)}`

/** The Machine our Set-Cookie names, or null when the answer does not set our cookie. */
function cookieSetTo (answer: Answer): string | null {
  const all = answer.headers['set-cookie'] ?? []
  const ours = all.find((line) => line.startsWith(`${COOKIE}=`))
  if (ours === undefined) return null
  return codec.decode(ours.slice(COOKIE.length + 1).split(';')[0])
}

test('a forged fly-replay-failed keeps the session on its Machine (maintenance) and never moves it to the named one', async (t) => {
  const navigator = await machine(t, { region: 'ord', fallback: 'maintenance' })
  for (const failed of [`instance=${CHOSEN};reason=timeout`, `instance=${HOME}`, `replay_source=${CHOSEN}`, 'garbage', `instance=${CHOSEN};instance=${SELF}`]) {
    const answer = await http(navigator.address, '/app/page', { headers: { cookie: cookieFor(HOME), 'fly-replay-failed': failed } })
    t.equal(answer.status, 503, `${failed}: maintenance page`)
    t.equal(answer.headers['fly-replay'], undefined, `${failed}: not replayed`)
    t.equal(cookieSetTo(answer), null, `${failed}: the cookie is left on ${HOME}`)
  }
  const own = await http(navigator.address, '/app/page', { headers: { cookie: cookieFor(SELF), 'fly-replay-failed': `instance=${CHOSEN}` } })
  t.equal(own.status, 200, 'a cookie for this Machine is served here whatever the header says')
  t.equal(cookieSetTo(own), SELF)
  const none = await http(navigator.address, '/app/page', { headers: { 'fly-replay-failed': `instance=${CHOSEN}` } })
  t.equal(cookieSetTo(none), SELF, 'no cookie: pinned here, not to the Machine the header names')
})

test('with route_to_available, a forged fly-replay-failed moves the session only to the Machine that answers', async (t) => {
  const navigator = await machine(t, { region: 'ord', fallback: 'route_to_available' })
  for (const failed of [`instance=${CHOSEN};reason=timeout`, `instance=${HOME};replay_source=${CHOSEN}`]) {
    const answer = await http(navigator.address, '/app/page', { headers: { cookie: cookieFor(HOME), 'fly-replay-failed': failed } })
    t.equal(answer.status, 200, `${failed}: served here`)
    t.equal(cookieSetTo(answer), SELF, `${failed}: the cookie names this Machine, never ${CHOSEN}`)
  }
})

test('forged fly-replay-src and x-navigator-sticky-proxied never cause a second replay or a second hop', async (t) => {
  const navigator = await machine(t, { region: 'ord', fallback: 'maintenance' })
  const replayedOnce = await http(navigator.address, '/app/page', { headers: { cookie: cookieFor(HOME), 'fly-replay-src': `instance=${CHOSEN};state=${STICKY_REPLAY_STATE}` } })
  t.equal(replayedOnce.headers['fly-replay'], undefined, 'our sticky state: not replayed again')
  t.equal(replayedOnce.status, 503)
  const proxied = await http(navigator.address, '/app/page', { headers: { cookie: cookieFor(HOME), 'x-navigator-sticky-proxied': CHOSEN } })
  t.equal(proxied.headers['fly-replay'], undefined, 'proxied once already: not replayed')
  t.equal(proxied.status, 503)
  const foreign = await http(navigator.address, '/app/page', { headers: { cookie: cookieFor(HOME), 'fly-replay-src': `instance=${CHOSEN};state=someone-else` } })
  t.equal(foreign.headers['fly-replay'], `instance=${HOME};state=${STICKY_REPLAY_STATE};timeout=10s;fallback=force_self`,
    'a state that is not ours: replayed once, to the cookie\'s Machine and nowhere else')
})

test('a request replayed by a replay rule is not replayed again by sticky sessions, and the reverse', async (t) => {
  // This Machine is in ams, so the /api/ rule is satisfied here; the user's session is on m2.
  const inRuleRegion = await machine(t, { region: 'ams', fallback: 'maintenance' })
  const afterRule = await http(inRuleRegion.address, '/api/orders', {
    headers: { cookie: cookieFor(HOME), 'fly-replay-src': `instance=${CHOSEN};region=ord;state=${RULES_REPLAY_STATE}` }
  })
  t.equal(afterRule.headers['fly-replay'], undefined, 'replayed by the rule already: sticky sessions do not replay it again')
  t.equal(afterRule.status, 200, 'the rule\'s routing stands: served here')
  t.equal(cookieSetTo(afterRule), null, `the cookie is left on ${HOME} for the paths the rule does not cover`)

  // This Machine is in ord, so the rule wants ams; the request was replayed here by sticky sessions.
  const outsideRuleRegion = await machine(t, { region: 'ord', fallback: 'maintenance' })
  const afterSticky = await http(outsideRuleRegion.address, '/api/orders', {
    headers: { cookie: cookieFor(SELF), 'fly-replay-src': `instance=${HOME};region=ams;state=${STICKY_REPLAY_STATE}` }
  })
  t.equal(afterSticky.headers['fly-replay'], undefined, 'replayed by sticky sessions already: the rule does not replay it again')
  const failed = await http(outsideRuleRegion.address, '/api/orders', { headers: { 'fly-replay-failed': `region=ams;reason=timeout;replay_source=${CHOSEN}` } })
  t.equal(failed.status, 503, 'the rule\'s target failed: maintenance, never a new replay')
  t.equal(failed.headers['fly-replay'], undefined)
})

test('fuzzed forged headers: at most one replay, only to the cookie\'s Machine or the rule\'s region, and the cookie only ever names this Machine', async (t) => {
  const navigators = {
    maintenance: await machine(t, { region: 'ord', fallback: 'maintenance' }),
    route_to_available: await machine(t, { region: 'ord', fallback: 'route_to_available' })
  }
  const id = fc.constantFrom(SELF, HOME, CHOSEN, 'evil', 'M2', '')
  const state = fc.constantFrom(STICKY_REPLAY_STATE, RULES_REPLAY_STATE, 'nav', 'x', '', `"${STICKY_REPLAY_STATE}"`, `${STICKY_REPLAY_STATE};x=1`)
  const field = fc.oneof(
    id.map((v) => `instance=${v}`), state.map((v) => `state=${v}`), id.map((v) => `replay_source=${v}`),
    fc.constantFrom('region=ams', 'region=ord', 'reason=timeout', 't=1', 'elapsed_ms=5', '=', ';;', 'state', 'INSTANCE=m3'))
  const headerValue = fc.array(field, { minLength: 1, maxLength: 4 }).map((fields) => fields.join(';'))
  const cases = fc.sample(fc.record({
    mode: fc.constantFrom('maintenance' as const, 'route_to_available' as const),
    path: fc.constantFrom('/app/page', '/api/orders', '/other'),
    cookie: fc.constantFrom(null, cookieFor(SELF), cookieFor(HOME), cookieFor(CHOSEN), `${COOKIE}=${CHOSEN}`, `${COOKIE}=${HOME}.forged`),
    src: fc.option(headerValue, { nil: undefined }),
    failed: fc.option(headerValue, { nil: undefined }),
    proxied: fc.option(id, { nil: undefined }),
    method: fc.constantFrom('GET', 'POST')
  }), { numRuns: 400, seed: 7 })

  let replays = 0
  for (const item of cases) {
    const headers: Record<string, string> = {}
    if (item.cookie !== null) headers.cookie = item.cookie
    if (item.src !== undefined) headers['fly-replay-src'] = item.src
    if (item.failed !== undefined) headers['fly-replay-failed'] = item.failed
    if (item.proxied !== undefined) headers['x-navigator-sticky-proxied'] = item.proxied
    const label = JSON.stringify(item)
    const answer = await http(navigators[item.mode].address, item.path, { method: item.method, headers, body: item.method === 'POST' ? 'x' : undefined })

    const replay = answer.headers['fly-replay']
    if (replay !== undefined) {
      replays++
      const srcState = parseReplaySrc(item.src)?.state
      if (srcState === STICKY_REPLAY_STATE || srcState === RULES_REPLAY_STATE) t.fail(`${label}: replayed a second time (${replay})`)
      if (item.failed !== undefined) t.fail(`${label}: replayed although a replay already failed (${replay})`)
      if (item.proxied !== undefined && item.path !== '/api/orders') t.fail(`${label}: replayed although proxied once already`)
      if (!(replay.startsWith(`instance=${HOME};`) || replay.startsWith('region=ams;'))) t.fail(`${label}: replayed to ${replay}`)
    }
    const pinned = cookieSetTo(answer)
    if (pinned !== null && pinned !== SELF) t.fail(`${label}: cookie moved to ${pinned}`)
    for (const [name, value] of Object.entries(answer.headers)) {
      const text = String(value)
      if (/\bm3\b|evil/.test(text)) t.fail(`${label}: ${name} carries a value from the request: ${text}`)
    }
  }
  t.comment(`${replays} of ${cases.length} forged requests were replayed (once)`)
  t.ok(replays > 0, 'some were replayed: the property was exercised')
  for (const navigator of Object.values(navigators)) t.equal(navigator.child.exitCode, null, 'still running')
})
