// Cookie-based session persistence checked the way the Gateway API's conformance plan for it (GEP-1619) does, through
// the edge and three real navigator Machines: consecutive requests with the cookie reach one backend; a session
// cookie has no Max-Age or Expires; a permanent one's Max-Age is the configured lifetime; and when the session's
// backend is removed, the next request establishes a new session on an available one.
import { test, type Test } from 'tap'
import type { Reply } from './fixtures.js'
import { COOKIE, CookieJarClient, cookieFrom, demoConfig, destroyMachine, startDemoFly, traced, type DemoFly } from './e2e-helpers.js'

interface WhoAmI { machine: string }

const DEBUG_HEADER = 'x-navigator-sticky'

/** Our cookie's Set-Cookie header in an answer (the tenant sets none of its own). */
function setCookie (reply: Reply): string {
  const header = (reply.headers['set-cookie'] ?? []).find((h) => h.startsWith(`${COOKIE}=`))
  if (header === undefined) throw new Error(`no ${COOKIE} Set-Cookie in ${JSON.stringify(reply.headers)}`)
  return header
}

function attribute (header: string, name: string): string | undefined {
  for (const part of header.split(';').slice(1)) {
    const [key, ...value] = part.trim().split('=')
    if (key.toLowerCase() === name.toLowerCase()) return value.join('=')
  }
  return undefined
}

/** 50 requests in a row with the cookie, each answered by the Machine the first one pinned the client to. */
async function fiftyOnOneMachine (t: Test, client: CookieJarClient, fly: DemoFly): Promise<string> {
  const first = await client.get('/app/whoami')
  const pinned = first.json<WhoAmI>().machine
  t.equal(cookieFrom(first), pinned, 'the first answer sets the cookie to the Machine that served it')
  const served: string[] = []
  for (let i = 0; i < 50; i++) {
    const reply = await client.get('/app/whoami')
    t.equal(reply.status, 200)
    served.push(reply.json<WhoAmI>().machine)
  }
  t.same([...new Set(served)], [pinned], '50 consecutive requests with the cookie, one Machine')
  t.ok(fly.routes.some((r) => r.replayed && r.machineId === pinned), 'some of them arrived elsewhere and were replayed to it')
  return pinned
}

/** After a removal: the very next request is served elsewhere and starts a new session there, which then holds. */
async function newSession (t: Test, fly: DemoFly, client: CookieJarClient, gone: string, decision: (machine: string) => string): Promise<string> {
  const { reply, edgeErrors } = await traced(fly, () => client.get('/app/whoami'))
  t.equal(reply.status, 200, 'the request right after the removal is served')
  const now = reply.json<WhoAmI>().machine
  t.not(now, gone, 'by an available Machine')
  t.equal(cookieFrom(reply), now, 'which sets a new session cookie naming itself')
  t.equal(reply.headers[DEBUG_HEADER], decision(now))
  t.same(edgeErrors, [])
  for (let i = 0; i < 10; i++) t.equal((await client.get('/app/whoami')).json<WhoAmI>().machine, now, 'the new session holds')
  t.ok(fly.routes.every((r) => r.replays <= 1), 'no request was replayed more than once')
  return now
}

test('GEP-1619, session cookie (cookie_max_age: 0): one Machine for 50 requests, a cookie without Max-Age or Expires, and a new session when the Machine is destroyed and no longer listed, even in maintenance mode', async (t) => {
  const config = await demoConfig(t, [
    ['cookie_max_age: 24h', 'cookie_max_age: 0'],
    ['replay_timeout: 5s', 'replay_timeout: 5s\n      debug_header: true']
  ])
  const fly = await startDemoFly(t, { config })
  const client = new CookieJarClient(fly.edge.url)
  const pinned = await fiftyOnOneMachine(t, client, fly)

  const header = setCookie(await client.get('/app/whoami'))
  t.equal(attribute(header, 'Max-Age'), undefined, `no Max-Age: ${header}`)
  t.equal(attribute(header, 'Expires'), undefined, 'no Expires: the browser forgets it when it closes')

  // Discovery no longer lists it (the other Machines reload their peers without it): the cookie names a Machine that
  // does not exist, which no fallback_mode keeps a user on.
  await destroyMachine(fly, pinned, { unlist: true })
  await newSession(t, fly, client, pinned, (now) => `rejected=machine-unknown; machine=${now}`)
  t.equal(attribute(setCookie(await client.get('/app/whoami')), 'Max-Age'), undefined, 'the new cookie is a session cookie too')
})

test('GEP-1619, permanent cookie (cookie_max_age: 1h30m) with route_to_available: Max-Age is the lifetime in seconds, and a removed Machine\'s session moves to an available one, listed or not', async (t) => {
  const config = await demoConfig(t, [
    ['cookie_max_age: 24h', 'cookie_max_age: 1h30m'],
    ['fallback_mode: maintenance', 'fallback_mode: route_to_available'],
    ['replay_timeout: 5s', 'replay_timeout: 5s\n      debug_header: true']
  ])
  const fly = await startDemoFly(t, { config })
  const client = new CookieJarClient(fly.edge.url)
  const first = await fiftyOnOneMachine(t, client, fly)
  const header = setCookie(await client.get('/app/whoami'))
  t.equal(attribute(header, 'Max-Age'), String(90 * 60), `Max-Age=5400: ${header}`)
  t.equal(attribute(header, 'Expires'), undefined, 'and no Expires beside it')

  let second = ''
  await t.test('the pinned Machine destroyed while the others still list it: re-pinned by the fallback', async (t) => {
    await destroyMachine(fly, first)
    second = await newSession(t, fly, client, first, (now) => `re-pinned; machine=${now}`)
    t.ok(fly.routes.some((r) => r.fallback), 'the edge handed the replay back with fly-replay-failed')
    t.equal(attribute(setCookie(await client.get('/app/whoami')), 'Max-Age'), '5400', 'the new session cookie is permanent too')
  })

  await t.test('that Machine destroyed too, and no longer listed: its cookie names no Machine, a new session on the last one', async (t) => {
    await destroyMachine(fly, second, { unlist: true })
    const third = await newSession(t, fly, client, second, (now) => `rejected=machine-unknown; machine=${now}`)
    t.not(third, first)
  })
})
