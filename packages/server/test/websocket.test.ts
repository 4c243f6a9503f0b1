import { test } from 'tap'
import WebSocket from 'ws'
import type { IncomingMessage } from 'node:http'
import { cableServer, freePort, http, siteConfig, startNavigator, tempDir, tenant } from './helpers.js'
import type { Running } from './helpers.js'

const MACHINE = 'm1abc'
const OTHER_MACHINE = 'm2def'

async function cableSite (): Promise<{ dir: string, cablePort: number }> {
  const cablePort = await freePort()
  const dir = tempDir({
    'navigator.yml': await siteConfig({
      server: ['  shutdown_timeout: 10s'],
      routes: [
        '  fly:',
        '    sticky_sessions:',
        '      enabled: true',
        '      paths: ["/cable"]',
        '      peers:',
        `        ${MACHINE}: "http://127.0.0.1:1"`,
        `        ${OTHER_MACHINE}: "http://127.0.0.1:2"`
      ],
      tenants: [tenant('app', '/app')],
      after: cableServer(cablePort)
    })
  })
  return { dir, cablePort }
}

async function startCableSite (t: Parameters<typeof startNavigator>[0]): Promise<Running> {
  const { dir } = await cableSite()
  const nav = await startNavigator(t, dir, { FLY_MACHINE_ID: MACHINE, FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' })
  await nav.waitForLog((line) => line.msg === 'standalone server ready')
  return nav
}

function wsUrl (nav: Running, path: string): string {
  return nav.address.replace(/^http/, 'ws') + path
}

async function open (url: string, protocols?: string[], options?: WebSocket.ClientOptions): Promise<{ ws: WebSocket, response: IncomingMessage }> {
  const ws = new WebSocket(url, protocols, options)
  return await new Promise((resolve, reject) => {
    let response: IncomingMessage
    ws.once('upgrade', (res) => { response = res })
    ws.once('open', () => { resolve({ ws, response }) })
    ws.once('error', reject)
    ws.once('unexpected-response', (req, res) => { reject(new Error(`unexpected response ${res.statusCode ?? 0}`)) })
  })
}

async function next (ws: WebSocket): Promise<{ data: Buffer, isBinary: boolean }> {
  return await new Promise((resolve) => {
    ws.once('message', (data: Buffer, isBinary: boolean) => { resolve({ data, isBinary }) })
  })
}

async function closed (ws: WebSocket): Promise<{ code: number, reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed')
  return await new Promise((resolve) => {
    ws.once('close', (code: number, reason: Buffer) => { resolve({ code, reason: reason.toString() }) })
  })
}

async function refusal (url: string, options?: WebSocket.ClientOptions): Promise<IncomingMessage> {
  const ws = new WebSocket(url, options)
  return await new Promise((resolve, reject) => {
    ws.once('open', () => { reject(new Error('the upgrade was accepted')) })
    ws.once('error', () => {})
    ws.once('unexpected-response', (req, res) => {
      res.resume()
      resolve(res)
    })
  })
}

test('an upgrade on /cable is proxied with every header and subprotocol, and the 101 carries the sticky cookie', async (t) => {
  const nav = await startCableSite(t)
  const { ws, response } = await open(wsUrl(nav, '/cable?room=1'), ['actioncable-v1-json', 'actioncable-unsupported'], {
    headers: { origin: 'https://example.test', cookie: 'session=abc', authorization: 'Bearer token-1' },
    perMessageDeflate: true
  })
  t.teardown(() => { ws.terminate() })
  t.equal(ws.protocol, 'actioncable-v1-json', 'the upstream chose the subprotocol')
  t.match(String(response.headers['set-cookie']), new RegExp(`_navigator_machine=${MACHINE}`), 'the sticky cookie is set on the 101')

  ws.send('headers')
  const seen = JSON.parse((await next(ws)).data.toString()) as { url: string, headers: Record<string, string> }
  t.equal(seen.url, '/cable?room=1')
  t.equal(seen.headers.origin, 'https://example.test')
  t.match(seen.headers.cookie, /session=abc/)
  t.equal(seen.headers.authorization, 'Bearer token-1')
  t.same(seen.headers['sec-websocket-protocol'].split(',').map((p) => p.trim()), ['actioncable-v1-json', 'actioncable-unsupported'])
  t.match(seen.headers['sec-websocket-extensions'], /permessage-deflate/)
  t.ok(seen.headers['sec-websocket-key'])
  t.equal(seen.headers['sec-websocket-version'], '13')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.ok(seen.headers['x-forwarded-host'])
})

test('echo round trip, binary frames stay binary, and the upstream close code reaches the client', async (t) => {
  const nav = await startCableSite(t)
  const { ws } = await open(wsUrl(nav, '/cable'))
  t.teardown(() => { ws.terminate() })

  ws.send('ping')
  const text = await next(ws)
  t.equal(text.data.toString(), 'ping')
  t.equal(text.isBinary, false)

  const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255])
  ws.send(bytes)
  const binary = await next(ws)
  t.equal(binary.isBinary, true)
  t.same(binary.data, bytes)

  const big = Buffer.alloc(1024 * 1024, 7)
  ws.send(big)
  t.same((await next(ws)).data, big, 'a 1 MiB frame survives the relay')

  const done = closed(ws)
  ws.send('close:4001')
  const { code, reason } = await done
  t.equal(code, 4001)
  t.equal(reason, 'bye')
})

test('SIGHUP keeps open WebSockets working', async (t) => {
  const nav = await startCableSite(t)
  const { ws } = await open(wsUrl(nav, '/cable'))
  t.teardown(() => { ws.terminate() })
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')
  ws.send('still here')
  t.equal((await next(ws)).data.toString(), 'still here')
  const fresh = await open(wsUrl(nav, '/cable'))
  fresh.ws.send('new one')
  t.equal((await next(fresh.ws)).data.toString(), 'new one')
  fresh.ws.terminate()
})

test('an upstream refusal (403) reaches the client as a 403, never a 101', async (t) => {
  const nav = await startCableSite(t)
  const response = await refusal(wsUrl(nav, '/cable?refuse'))
  t.equal(response.statusCode, 403)
})

test('a cookie for another Machine gets a fly-replay answer to the upgrade request, never a 101', async (t) => {
  const nav = await startCableSite(t)
  const response = await refusal(wsUrl(nav, '/cable'), { headers: { cookie: `_navigator_machine=${OTHER_MACHINE}` } })
  t.equal(response.statusCode, 307)
  t.match(String(response.headers['fly-replay']), new RegExp(`instance=${OTHER_MACHINE}`))
})

test('kill -9 of the standalone server: /cable answers 503 promptly, the server restarts after the first backoff delay', async (t) => {
  const nav = await startCableSite(t)
  const starting = await nav.waitForLog((line) => line.msg === 'standalone server starting')
  const readyCount = nav.logs.filter((line) => line.msg === 'standalone server ready').length
  const { ws } = await open(wsUrl(nav, '/cable'))
  const dropped = closed(ws)

  const killedAt = Date.now()
  process.kill(starting.pid as number, 'SIGKILL')
  await dropped
  const answer = await http(nav.address, '/cable')
  t.equal(answer.status, 503)
  t.equal(answer.headers['retry-after'], '5')
  // Well under the 5 s a client would wait before a retry (and the upstream timeout a hang would run into).
  t.ok(Date.now() - killedAt < 5000, `503 after ${Date.now() - killedAt} ms`)

  // How soon it comes back is the backoff policy (the first delay after a crash); the cold start of a Node child
  // on a loaded machine takes what it takes, so the wait for it is generous.
  const restarting = await nav.waitForLog((line) => line.msg === 'standalone server restarting after backoff', 10_000)
  t.equal(restarting.delayMs, 100, 'restarted after the initial backoff delay')
  await nav.waitForLog((line) => line.msg === 'standalone server ready' &&
    nav.logs.filter((l) => l.msg === 'standalone server ready').length > readyCount, 10_000)
  t.ok(Date.now() - killedAt < 10_000, `back after ${Date.now() - killedAt} ms`)
  const again = await open(wsUrl(nav, '/cable'))
  again.ws.send('back')
  t.equal((await next(again.ws)).data.toString(), 'back')
  again.ws.terminate()
})

test('SIGTERM with 100 open WebSockets and a slow request: the request completes, every socket gets 1001, every child is gone, exit 0', async (t) => {
  const nav = await startCableSite(t)
  const cablePid = (await nav.waitForLog((line) => line.msg === 'standalone server starting')).pid as number
  const tenantPid = (JSON.parse((await http(nav.address, '/app/')).text) as { pid: number }).pid

  const sockets = await Promise.all(Array.from({ length: 100 }, async () => (await open(wsUrl(nav, '/cable'))).ws))
  const closes = sockets.map(closed)
  const slow = http(nav.address, '/app/slow?ms=1500')
  await nav.waitForLog((line) => line.msg === 'slow request started')

  nav.child.kill('SIGTERM')
  const answer = await slow
  t.equal(answer.status, 200)
  t.equal(answer.text, 'slow done\n')
  const codes = (await Promise.all(closes)).map((c) => c.code)
  t.same([...new Set(codes)], [1001], 'every client got 1001 (going away)')
  t.equal((await nav.exited).code, 0)
  for (const pid of [cablePid, tenantPid]) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `child ${pid} is gone`)
})
