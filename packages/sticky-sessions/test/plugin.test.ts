import { test } from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { createMaintenanceResponder, DEFAULT_RETRY_AFTER_SECONDS } from '@navigator/proxy'
import {
  stickySessions,
  DEFAULT_COOKIE_NAME,
  STICKY_REPLAY_STATE,
  REPLAY_RESPONSE_BODY
} from '../src/index.js'
import { stickyMatchPath } from '../src/paths.js'
import { build, setCookies } from './helpers.js'

test('a first visit is served here and pinned with a cookie carrying exactly the configured attributes', async (t) => {
  const { app } = await build(t)
  const res = await app.inject('/page')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { servedBy: 'm1', sticky: { machine: 'm1', action: 'serve' } })
  t.same(setCookies(res.headers), [`${DEFAULT_COOKIE_NAME}=m1; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax`])

  const custom = await build(t, {
    cookieName: '_cable_machine',
    cookieMaxAge: '2h',
    cookieSecure: true,
    cookieHttpOnly: false,
    cookieSameSite: 'strict',
    cookiePath: '/app'
  })
  t.same(setCookies((await custom.app.inject('/x')).headers), ['_cable_machine=m1; Max-Age=7200; Path=/app; Secure; SameSite=Strict'])
  const ms = await build(t, { cookieMaxAge: 90_000, cookieSameSite: 'NONE', cookieSecure: true })
  t.same(setCookies((await ms.app.inject('/x')).headers), [`${DEFAULT_COOKIE_NAME}=m1; Max-Age=90; Path=/; HttpOnly; Secure; SameSite=None`])
})

test('a cookie for this Machine is served here and re-set so its expiry slides', async (t) => {
  const { app, logs } = await build(t)
  const res = await app.inject({ url: '/page', headers: { cookie: `other=1; ${DEFAULT_COOKIE_NAME}=m1` } })
  t.same(res.json().sticky, { machine: 'm1', action: 'serve' })
  t.equal(setCookies(res.headers).length, 1)
  t.match(setCookies(res.headers)[0], /^_navigator_machine=m1; Max-Age=86400;/)
  t.ok(logs.some((l) => l.msg === 'Sticky session cookie found' && l.machine === 'm1' && l.level === 20))
})

test('a cookie for another Machine is answered with fly-replay, the status, a tiny body and no Set-Cookie', async (t) => {
  const { app, logs } = await build(t)
  const res = await app.inject({ url: '/page', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2` } })
  t.equal(res.statusCode, 307)
  t.equal(res.headers['fly-replay'], `instance=m2;state=${STICKY_REPLAY_STATE};timeout=10s;fallback=force_self`)
  t.equal(res.body, REPLAY_RESPONSE_BODY)
  t.equal(res.headers['set-cookie'], undefined)
  const info = logs.find((l) => l.msg === 'Routing to machine via Fly-Replay')
  t.equal(info?.level, 30)
  t.equal(info?.machine, 'm2')

  const tuned = await build(t, { replayStatus: 409, replayTimeout: '1m30s' })
  const again = await tuned.app.inject({ url: '/page', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2` } })
  t.equal(again.statusCode, 409)
  t.equal(again.headers['fly-replay'], `instance=m2;state=${STICKY_REPLAY_STATE};timeout=90s;fallback=force_self`, 'whole seconds, never 1m30s')
  const ms = await build(t, { replayTimeout: '1.5s' })
  t.equal((await ms.app.inject({ url: '/page', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2` } })).headers['fly-replay'],
    `instance=m2;state=${STICKY_REPLAY_STATE};timeout=1500ms;fallback=force_self`, 'whole milliseconds, never 1.5s')
})

test('with replayCache the replay is prefer_instance=T alone, which Fly can cache', async (t) => {
  const { app } = await build(t, { replayCache: true })
  const res = await app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2` } })
  t.equal(res.statusCode, 307)
  t.equal(res.headers['fly-replay'], 'prefer_instance=m2')
  t.equal(res.headers['set-cookie'], undefined)
})

test('fly-preferred-instance-unavailable is treated like fly-replay-failed: fallbackMode, in both modes', async (t) => {
  const headers = { cookie: `${DEFAULT_COOKIE_NAME}=m2`, 'fly-preferred-instance-unavailable': 'm2' }
  const { app, logs } = await build(t, { replayCache: true })
  const kept = await app.inject({ url: '/page', headers })
  t.equal(kept.statusCode, 503)
  t.equal(kept.headers['fly-replay'], undefined, 'never replayed again')
  t.equal(kept.headers['set-cookie'], undefined, 'the cookie still names m2')
  t.ok(logs.some((l) => l.msg === 'machine unavailable' && l.machine === 'm2'))
  const moved = await build(t, { replayCache: true, fallbackMode: 'route_to_available' })
  const res = await moved.app.inject({ url: '/page', headers })
  t.equal(res.statusCode, 200)
  t.same(res.json().sticky, { machine: 'm1', action: 'fallback' })
  t.match(setCookies(res.headers)[0], /^_navigator_machine=m1;/)
})

test('fly-replay-cache-status is logged at debug, as one of Fly\'s values or "other"', async (t) => {
  const { app, logs } = await build(t, { replayCache: true })
  await app.inject({ url: '/page', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m1`, 'fly-replay-cache-status': 'hit' } })
  await app.inject({ url: '/page', headers: { 'fly-replay-cache-status': 'evil\nline' } })
  const lines = logs.filter((l) => l.msg === 'fly-replay-cache-status')
  t.same(lines.map((l) => [l.level, l.status]), [[20, 'hit'], [20, 'other']])
  const quiet = await build(t, { replayCache: true }, 'info')
  await quiet.app.inject({ url: '/page', headers: { 'fly-replay-cache-status': 'miss' } })
  t.notOk(quiet.logs.some((l) => l.msg === 'fly-replay-cache-status'), 'nothing above debug')
})

test('fly-replay-failed with fallbackMode maintenance: 503, no-store, Retry-After, cookie kept, warn logged', async (t) => {
  const { app, logs } = await build(t)
  const res = await app.inject({ url: '/page', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2`, 'fly-replay-failed': 'instance=m2;reason=timeout' } })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['retry-after'], String(DEFAULT_RETRY_AFTER_SECONDS))
  t.equal(res.headers['set-cookie'], undefined, 'the cookie still points at the Machine holding the data')
  t.equal(res.headers['fly-replay'], undefined)
  const warn = logs.find((l) => l.msg === 'machine unavailable')
  t.equal(warn?.level, 40)
  t.equal(warn?.machine, 'm2')
})

test('fly-replay-failed with fallbackMode route_to_available: served here and re-pinned', async (t) => {
  const { app } = await build(t, { fallbackMode: 'route_to_available' })
  const res = await app.inject({ url: '/page', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2`, 'fly-replay-failed': 'instance=m2' } })
  t.equal(res.statusCode, 200)
  t.same(res.json().sticky, { machine: 'm1', action: 'fallback' })
  t.match(setCookies(res.headers)[0], /^_navigator_machine=m1;/)
})

test('loop freedom: our replay arriving on the wrong Machine is not replayed again', async (t) => {
  const { app } = await build(t)
  const headers = { cookie: `${DEFAULT_COOKIE_NAME}=m2`, 'fly-replay-src': `instance=m3;region=ord;t=1;state=${STICKY_REPLAY_STATE}` }
  const res = await app.inject({ url: '/page', headers })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['fly-replay'], undefined)
  const custom = await build(t, { maintenance: createMaintenanceResponder('custom maintenance') })
  t.equal((await custom.app.inject({ url: '/page', headers })).body, 'custom maintenance')
})

test('a cookie naming a Machine that discovery says is gone is reassigned here', async (t) => {
  const { app, logs } = await build(t, { discovery: 'static', peers: { m2: 'http://127.0.0.1:9' } })
  const res = await app.inject({ url: '/page', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m7` } })
  t.equal(res.statusCode, 200)
  t.match(setCookies(res.headers)[0], /^_navigator_machine=m1;/)
  t.ok(logs.some((l) => l.level === 40 && l.reason === 'machine-unknown'))
  const custom = await build(t, { discovery: { has: (id) => id === 'm2' } })
  t.equal((await custom.app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m7` } })).statusCode, 200)
  t.equal((await custom.app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2` } })).statusCode, 307)
})

test('paths: "/cable" exact, "/app/*" the prefix and below, "*/admin" any ending; others are left alone', async (t) => {
  const { app } = await build(t, { paths: ['/cable', '/app/*', '*/admin'] })
  const cookie = { cookie: `${DEFAULT_COOKIE_NAME}=m2` }
  for (const url of ['/cable', '/cable?x=1', '/app', '/app/', '/app/a/b/c', '/x/admin', '/admin']) {
    t.equal((await app.inject({ url, headers: cookie })).statusCode, 307, `${url} is sticky`)
  }
  for (const url of ['/cable/x', '/cables', '/application', '/admin/x', '/', '/x?p=/cable']) {
    const res = await app.inject({ url, headers: cookie })
    t.equal(res.statusCode, 200, `${url} is not sticky`)
    t.equal(res.headers['set-cookie'], undefined, `${url} gets no cookie`)
    t.equal(res.json().sticky, null)
  }
})

test('paths are matched on the path percent-decoded once, as the app reads it', async (t) => {
  const { app } = await build(t, { paths: ['/cable', '/app/*', '*/admin'] })
  const cookie = { cookie: `${DEFAULT_COOKIE_NAME}=m2` }
  for (const url of ['/%61pp/x', '/%61pp', '/app%2Fx', '/c%61ble?x=%41', '/x/%61dmin']) {
    t.equal((await app.inject({ url, headers: cookie })).statusCode, 307, `${url} is sticky`)
  }
  // Decoded once only (%2561 is "%61" to the app), case kept, an encoded "?" is part of the path, the query is not.
  for (const url of ['/%2561pp/x', '/%41pp/x', '/cable%3Fx', '/x?p=%2Fcable']) {
    const res = await app.inject({ url, headers: cookie })
    t.equal(res.statusCode, 200, `${url} is not sticky`)
    t.equal(res.json().sticky, null)
  }
})

test('the path for matching: the URL itself without "%" in the path, decoded once otherwise, as sent when malformed', async (t) => {
  const plain = '/app/x?q=%41'
  t.equal(stickyMatchPath(plain), plain, 'no "%" in the path: the same string, no work')
  t.equal(stickyMatchPath('/%61pp/x?q=1'), '/app/x')
  t.equal(stickyMatchPath('/%2561pp'), '/%61pp', 'decoded once only')
  t.equal(stickyMatchPath('/cable%3Fx'), '/cable%3Fx', 'a decoded "?" stays encoded')
  t.equal(stickyMatchPath('/app/%zz'), '/app/%zz', 'a malformed escape: the raw path')
  t.equal(stickyMatchPath('/%c0%afapp'), '/%c0%afapp', 'invalid UTF-8: the raw path')
  t.equal(stickyMatchPath('/%E2%82%AC'), '/\u20ac', 'UTF-8 decoded')
})

test('signed cookies: issued signed, verified, rotated, and unsigned or forged ones reassigned', async (t) => {
  const { app } = await build(t, { secret: ['new-secret', 'old-secret'] })
  const first = await app.inject('/')
  const issued = /^_navigator_machine=([^;]+);/.exec(setCookies(first.headers)[0])?.[1] as string
  t.match(issued, /^m1\.[A-Za-z0-9_-]{43}$/)
  const signer = await build(t, { machineId: 'm2', secret: 'old-secret' })
  const m2Value = /^_navigator_machine=([^;]+);/.exec(setCookies((await signer.app.inject('/')).headers)[0])?.[1] as string
  const replayed = await app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=${m2Value}` } })
  t.equal(replayed.headers['fly-replay']?.toString().startsWith('instance=m2;'), true, 'an old-secret signature still verifies')
  const forged = await app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2.${'A'.repeat(43)}` } })
  t.equal(forged.statusCode, 200)
  const unsigned = await app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2` } })
  t.equal(unsigned.statusCode, 200)
  t.equal(setCookies(unsigned.headers)[0], setCookies(first.headers)[0])
})

test('rejected cookies are logged at warn at most once a second per reason, escaped and truncated', async (t) => {
  const { app, logs } = await build(t)
  for (let i = 0; i < 5; i++) await app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=${'X'.repeat(100)}` } })
  await app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2.${'A'.repeat(43)}` } })
  const warnings = logs.filter((l) => l.level === 40)
  t.equal(warnings.length, 2)
  t.equal(warnings[0].reason, 'malformed')
  t.equal(warnings[0].value, `"${'X'.repeat(32)}"... (100 characters)`)
  t.equal(warnings[1].reason, 'signature-not-configured')
})

test('the happy path logs nothing above debug', async (t) => {
  const { app, logs } = await build(t, {}, 'info')
  await app.inject('/')
  await app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m1` } })
  t.same(logs.filter((l) => l.level > 30 || (l.msg !== 'incoming request' && l.msg !== 'request completed')), [])
})

test('without a Machine ID the plugin says so once and leaves every request alone', async (t) => {
  const saved = process.env.FLY_MACHINE_ID
  delete process.env.FLY_MACHINE_ID
  t.teardown(() => { if (saved !== undefined) process.env.FLY_MACHINE_ID = saved })
  const { app, logs } = await build(t, { machineId: undefined }, 'info')
  await app.inject('/')
  const res = await app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2` } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['set-cookie'], undefined)
  t.equal(logs.filter((l) => /no Machine ID/.test(l.msg)).length, 1)
})

test('FLY_MACHINE_ID is the default Machine ID, and enabled: false turns the plugin off', async (t) => {
  const saved = process.env.FLY_MACHINE_ID
  process.env.FLY_MACHINE_ID = 'from-env'
  t.teardown(() => { if (saved === undefined) delete process.env.FLY_MACHINE_ID; else process.env.FLY_MACHINE_ID = saved })
  const { app } = await build(t, { machineId: undefined })
  t.match(setCookies((await app.inject('/')).headers)[0], /^_navigator_machine=from-env;/)
  const off = await build(t, { enabled: false })
  t.equal((await off.app.inject({ url: '/', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2` } })).statusCode, 200)
})

test('a WebSocket upgrade gets the same decision before any handshake', async (t) => {
  const { app } = await build(t)
  const upgrade = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }
  const replay = await app.inject({ url: '/cable', headers: { ...upgrade, cookie: `${DEFAULT_COOKIE_NAME}=m2` } })
  t.equal(replay.statusCode, 307, 'a replay is a plain HTTP response')
  t.match(replay.headers['fly-replay'], /^instance=m2;/)
  let seen: unknown
  const local = Fastify()
  await local.register(stickySessions, { machineId: 'm1', discovery: 'none' })
  // Where the server's WebSocket proxy takes over: the decision is made, nothing has been sent yet.
  local.addHook('preHandler', async (_request, reply) => { seen = reply.getHeader('set-cookie') })
  local.get('/cable', async () => 'ok')
  t.teardown(async () => await local.close())
  await local.inject({ url: '/cable', headers: upgrade })
  t.match(String(seen), /^_navigator_machine=m1;/, 'the cookie waits in the reply headers for the 101')
})

test('it works beside an app that registered @fastify/cookie itself, keeping the app\'s cookies separate', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(stickySessions, { machineId: 'm1', discovery: 'none' })
  app.get('/', async (request, reply) => {
    reply.setCookie('session', 'abc', { path: '/' })
    return { cookies: request.cookies }
  })
  t.teardown(async () => await app.close())
  const res = await app.inject({ url: '/', headers: { cookie: 'theme=dark' } })
  t.same(res.json(), { cookies: { theme: 'dark' } })
  t.same(setCookies(res.headers), [`${DEFAULT_COOKIE_NAME}=m1; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax`, 'session=abc; Path=/; SameSite=Lax'])
})

test('options are validated at registration with precise errors', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ cookieName: 'bad name' }, /cookieName/],
    [{ cookieMaxAge: '1 day' }, /cookieMaxAge/],
    [{ cookieMaxAge: -5 }, /cookieMaxAge/],
    [{ cookieSameSite: 'Sometimes' }, /cookieSameSite/],
    [{ cookieSameSite: 'None' }, /None requires cookieSecure/],
    [{ cookiePath: 'app' }, /cookiePath/],
    [{ paths: ['app/*'] }, /paths/],
    [{ paths: ['/a*b'] }, /paths/],
    [{ fallbackMode: 'retry' }, /fallbackMode/],
    [{ secret: '' }, /secret/],
    [{ replayTimeout: 'soon' }, /replayTimeout/],
    [{ replayStatus: 99 }, /replayStatus/],
    [{ peers: { M2: 'http://x' } }, /peers/],
    [{ peers: { m2: 'ftp://x' } }, /peers\.m2/],
    [{ peers: { m2: 'http://x:3000/path' } }, /peers\.m2/],
    [{ machineId: 'Not Valid' }, /machineId/],
    [{ port: 70000 }, /port/],
    [{ discovery: 'static' }, /static/],
    [{ discovery: 42 }, /discovery/],
    [{ enabled: 'yes' }, /enabled/],
    [{ maintenance: 'page.html' }, /maintenance/],
    [{ cookieMaxAge: 500 }, /0 \(a session cookie\) or at least one second/],
    [{ cookieDomain: 'https://example.com' }, /cookieDomain/],
    [{ cookiePartitioned: true, cookieSecure: true }, /cookiePartitioned/],
    [{ cookiePartitioned: 'yes' }, /cookiePartitioned/],
    [{ headerName: 'cookie' }, /headerName/],
    [{ headerName: 'x machine' }, /headerName/],
    [{ maxReplayBody: -1 }, /maxReplayBody/],
    [{ directProxy: 'wire' }, /directProxy/],
    [{ flycastPort: 0 }, /flycastPort/],
    [{ flycastUrl: 'my-app.flycast' }, /flycastUrl/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => {
      await app.register(stickySessions, { machineId: 'm1', ...options } as never).ready()
    }, { message, code: 'NAV_STICKY_SESSIONS_INVALID_OPTION' }, JSON.stringify(options))
    await app.close()
  }
})
