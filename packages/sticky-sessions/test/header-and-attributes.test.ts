import { test } from 'tap'
import { createCookieCodec, DEFAULT_COOKIE_NAME } from '../src/index.js'
import { build, setCookies } from './helpers.js'

// The sticky header (headerName) and the cookie's Domain, Partitioned and session lifetime.

const SECRET = 'header-secret'
const codec = createCookieCodec([SECRET])

test('cookieMaxAge 0 is a session cookie: no Max-Age, no Expires', async (t) => {
  const { app } = await build(t, { cookieMaxAge: 0 })
  t.same(setCookies((await app.inject('/')).headers), [`${DEFAULT_COOKIE_NAME}=m1; Path=/; HttpOnly; SameSite=Lax`])
  const text = await build(t, { cookieMaxAge: '0s' })
  t.same(setCookies((await text.app.inject('/')).headers), [`${DEFAULT_COOKIE_NAME}=m1; Path=/; HttpOnly; SameSite=Lax`])
})

test('cookieDomain and cookiePartitioned are written as configured', async (t) => {
  const { app } = await build(t, { cookieDomain: 'example.com', cookiePartitioned: true, cookieSecure: true, cookieSameSite: 'None', cookieMaxAge: '2h' })
  t.same(setCookies((await app.inject('/')).headers), [
    `${DEFAULT_COOKIE_NAME}=m1; Max-Age=7200; Domain=example.com; Path=/; HttpOnly; Secure; Partitioned; SameSite=None`
  ])
})

test('without the cookie, the sticky header decides; every answer served here carries this Machine\'s value', async (t) => {
  const { app } = await build(t, { headerName: 'X-Machine', secret: SECRET })
  const first = await app.inject('/page')
  t.equal(first.headers['x-machine'], codec.encode('m1'), 'the signed value, beside the cookie')
  t.match(setCookies(first.headers)[0], new RegExp(`^${DEFAULT_COOKIE_NAME}=${codec.encode('m1').replace('.', '\\.')};`))
  const elsewhere = await app.inject({ url: '/page', headers: { 'x-machine': codec.encode('m2') } })
  t.equal(elsewhere.statusCode, 307, 'a header naming another Machine is replayed there')
  t.equal(elsewhere.headers['fly-replay'], 'instance=m2;state=nav-sticky;timeout=10s;fallback=force_self')
  t.equal(elsewhere.headers['x-machine'], undefined, 'a replay answer carries neither the cookie nor the header')
  const own = await app.inject({ url: '/page', headers: { 'x-machine': codec.encode('m1') } })
  t.equal(own.statusCode, 200)
  t.equal(own.headers['x-machine'], codec.encode('m1'))
  const both = await app.inject({ url: '/page', headers: { cookie: `${DEFAULT_COOKIE_NAME}=${codec.encode('m1')}`, 'x-machine': codec.encode('m2') } })
  t.equal(both.statusCode, 200, 'the cookie wins over the header')
})

test('an invalid or forged header value is rejected like a cookie and never echoed', async (t) => {
  const { app, logs } = await build(t, { headerName: 'x-machine', secret: SECRET })
  for (const value of ['m2', `m2.${'A'.repeat(43)}`, 'm2;instance=evil', '"m2"']) {
    const res = await app.inject({ url: '/page', headers: { 'x-machine': value } })
    t.equal(res.statusCode, 200, `${value}: served here`)
    t.equal(res.headers['x-machine'], codec.encode('m1'), `${value}: answered with this Machine's value, never the one sent`)
    t.equal(res.headers['fly-replay'], undefined)
  }
  const warned = logs.filter((l) => l.level === 40 && l.from === 'header')
  t.ok(warned.length > 0, 'the rejection is logged with where the value came from')
  t.notOk(warned.some((l) => String(l.value).includes('evil;')), 'escaped in the log, as a cookie is')
})

test('a route the header reached serves the same decisions as the cookie: fallback, and no header on maintenance', async (t) => {
  const { app } = await build(t, { headerName: 'x-machine' })
  const failed = await app.inject({ url: '/page', headers: { 'x-machine': 'm2', 'fly-replay-failed': 'instance=m2;reason=timeout' } })
  t.equal(failed.statusCode, 503)
  t.equal(failed.headers['x-machine'], undefined, 'the maintenance page keeps the client on m2')
  const moved = await build(t, { headerName: 'x-machine', fallbackMode: 'route_to_available' })
  const res = await moved.app.inject({ url: '/page', headers: { 'x-machine': 'm2', 'fly-replay-failed': 'instance=m2' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-machine'], 'm1', 're-pinned here')
})

test('paths that are not sticky get neither the cookie nor the header', async (t) => {
  const { app } = await build(t, { headerName: 'x-machine', paths: ['/app/*'] })
  const res = await app.inject({ url: '/public', headers: { 'x-machine': 'm2' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-machine'], undefined)
  t.equal(res.headers['set-cookie'], undefined)
})
