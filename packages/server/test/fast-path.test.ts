import { test } from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { freePort, http, startSite, tenant } from './helpers.js'
import type { Answer, LogLine } from './helpers.js'

// Navigator answers the hot path (a bodiless GET or HEAD for a ready tenant, a sticky replay) before Fastify sees
// the request, and leaves everything else to Fastify's pipeline. A POST with a small body takes the Fastify path
// for the same decision, so each pair below asks both paths the same question and expects the same answer.

const COOKIE = '_navigator_machine'

/** An answer without what differs between any two responses (the date, the upstream's pid and request id). */
function comparable (answer: Answer): { status: number, headers: IncomingHttpHeaders, body: string } {
  const headers = { ...answer.headers }
  delete headers.date
  return { status: answer.status, headers, body: answer.text }
}

interface Seen { url: string, headers: IncomingHttpHeaders }

function upstreamView (answer: Answer): Seen {
  const seen = JSON.parse(answer.text) as Seen
  return { url: seen.url, headers: seen.headers }
}

async function startStickySite (t: Parameters<Parameters<typeof test>[1]>[0], upstreamTimeout = '60s'): Promise<Awaited<ReturnType<typeof startSite>>> {
  return await startSite(t, {
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      '      peers:',
      '        m1: "http://127.0.0.1:1"',
      `        m2: "http://127.0.0.1:${await freePort()}"`
    ],
    tenants: [tenant('app', '/', 'start: eager')]
  }, { env: { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'fast', NAVIGATOR_UPSTREAM_TIMEOUT: upstreamTimeout }, warm: ['/warm-up'] })
}

test('a sticky replay: the same 307 from the fast path (GET) and from Fastify (POST), each logged once', async (t) => {
  const site = await startStickySite(t)
  const headers = { cookie: `${COOKIE}=m2` }
  const fast = await http(site.address, '/page?x=1', { headers })
  const slow = await http(site.address, '/page?x=1', { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: 'small' })
  t.equal(fast.status, 307)
  t.match(fast.headers['fly-replay'], /^instance=m2;state=nav-sticky;timeout=10s;fallback=force_self$/)
  t.equal(fast.headers['set-cookie'], undefined, 'a replay sets no cookie')
  t.same(comparable(fast), comparable(slow), 'status, every header and the body are the same on both paths')

  const routed = (line: LogLine): boolean => line.msg === 'Routing to machine via Fly-Replay' && line.machine === 'm2'
  await site.waitForLog((line) => routed(line) && line.reqId !== undefined)
  const lines = site.logs.filter(routed)
  t.equal(lines.length, 2, 'one info line per replay')
  t.equal(lines.filter((line) => line.reqId === undefined).length, 1, 'the GET was answered before Fastify (no request id)')
})

test('a proxied request: the fast path and Fastify send the upstream the same headers and the client the same cookies', async (t) => {
  const site = await startStickySite(t)
  const headers = { cookie: `${COOKIE}=m1`, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'forged.example' }
  const fast = await http(site.address, '/page?x=1', { headers })
  const slow = await http(site.address, '/page?x=1', { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: 'small' })
  for (const [name, answer] of [['fast', fast], ['fastify', slow]] as const) {
    t.equal(answer.status, 200, `${name}: served by the tenant`)
    t.same(answer.headers['set-cookie'], [
      `${COOKIE}=m1; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax`, 'a=1; Path=/', 'b=2; Path=/'
    ], `${name}: our cookie and the app's two, each its own header`)
  }
  const fastSeen = upstreamView(fast)
  const slowSeen = upstreamView(slow)
  t.equal(fastSeen.url, '/page?x=1')
  // A Machine ID is set, so the client is taken to be Fly's edge and its X-Forwarded-* are kept and extended.
  t.equal(fastSeen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
  t.equal(fastSeen.headers['x-forwarded-host'], 'forged.example')
  t.equal(fastSeen.headers['x-forwarded-proto'], 'http')
  t.match(fastSeen.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  for (const name of ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'cookie', 'host']) {
    t.equal(slowSeen.headers[name], fastSeen.headers[name], `${name} is the same on both paths`)
  }
})

test('an upstream too slow to answer: the same 504 from both paths, our cookie kept', async (t) => {
  const site = await startStickySite(t, '300ms')
  const headers = { cookie: `${COOKIE}=m1` }
  const fast = await http(site.address, '/slow?ms=2000', { headers })
  const slow = await http(site.address, '/slow?ms=2000', { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: 'small' })
  t.equal(fast.status, 504)
  t.same(JSON.parse(fast.text), {
    statusCode: 504,
    code: 'NAV_PROXY_UPSTREAM_TIMEOUT',
    error: 'Gateway Timeout',
    message: 'The upstream server did not answer in time'
  })
  t.same(comparable(fast), comparable(slow), 'status, headers (the sticky cookie among them) and body match')
})

test('an upstream that stopped listening: the same 502 from both paths', async (t) => {
  const site = await startStickySite(t)
  const headers = { cookie: `${COOKIE}=m1` }
  t.equal((await http(site.address, '/stop-listening', { headers })).status, 200)
  const fast = await http(site.address, '/page', { headers })
  const slow = await http(site.address, '/page', { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: 'small' })
  t.equal(fast.status, 502)
  t.equal(JSON.parse(fast.text).code, 'NAV_PROXY_UPSTREAM_UNREACHABLE')
  t.same(comparable(fast), comparable(slow), 'status, headers and body match')
  await site.waitForLog((line) => line.msg === 'upstream could not be reached' && line.reqId !== undefined)
  t.equal(site.logs.filter((line) => line.msg === 'upstream could not be reached' && line.level === 40).length, 2,
    'each 502 is logged once, at warn, on both paths')
})
