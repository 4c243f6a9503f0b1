import { test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'node:http'
import pino from 'pino'
import { parseConfig } from '@navigator/config'
import { buildServer } from '../src/server.js'
import { freePort, http, siteConfig, startSite, tenant, tempDir } from './helpers.js'

// routes.fly.sticky_sessions.debug_header: every response on a sticky path says what was decided, on the raw path
// and through Fastify alike, on the refusal of a WebSocket handshake too, and never when it is off.

const COOKIE = '_navigator_machine'
const HEADER = 'x-navigator-sticky'

interface Teardown { teardown (fn: () => unknown): void }

/** Machine m2: answers whatever is proxied to it directly. */
async function peer (t: Teardown): Promise<string> {
  const server = createServer((req, res) => { req.resume(); req.on('end', () => { res.end('served by m2\n') }) })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function start (t: Teardown, options: { rawPath: boolean, debugHeader: boolean, fallback: string, peerUrl: string }): Promise<string> {
  const yaml = await siteConfig({
    routes: [
      '  fly:',
      '    max_replay_body: 10',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*"]',
      `      fallback_mode: ${options.fallback}`,
      `      debug_header: ${String(options.debugHeader)}`,
      '      peers:',
      `        m2: "${options.peerUrl}"`,
      `        m3: "http://127.0.0.1:${await freePort()}"`
    ],
    tenants: [tenant('app', '/app', 'start: eager')]
  })
  const navigator = await buildServer(parseConfig(yaml, { dir: tempDir() }), {
    env: { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'debug', FLY_REGION: 'ord' },
    logger: pino({ level: 'silent' }),
    rawPath: options.rawPath
  })
  t.teardown(async () => { await navigator.close() })
  const address = await navigator.listen()
  await navigator.supervisor.ensureTenant('app')
  return address
}

/** The status and debug header of a WebSocket handshake that the sticky step refuses with plain HTTP. */
async function handshake (address: string, cookie: string): Promise<{ status: number, header: unknown }> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: '/app/cable', headers: { cookie, connection: 'upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } })
    req.on('response', (res) => { res.resume(); resolve({ status: res.statusCode ?? 0, header: res.headers[HEADER] }) })
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, header: res.headers[HEADER] }) })
    req.on('error', reject)
    req.end()
  })
}

const big = 'x'.repeat(100)

for (const rawPath of [true, false]) {
  const path = rawPath ? 'the raw path' : 'Fastify'
  test(`on ${path}, the debug header names each sticky decision and the Machine the cookie names afterwards`, async (t) => {
    const peerUrl = await peer(t)
    const maintenance = await start(t, { rawPath, debugHeader: true, fallback: 'maintenance', peerUrl })
    const repin = await start(t, { rawPath, debugHeader: true, fallback: 'route_to_available', peerUrl })
    const cookie = (machine: string): Record<string, string> => ({ cookie: `${COOKIE}=${machine}` })
    const cases: Array<[string, Promise<{ status: number, headers: Record<string, unknown> }>, number, string]> = [
      ['no cookie', http(maintenance, '/app/page'), 200, 'served; machine=m1'],
      ['a cookie for this Machine', http(maintenance, '/app/page', { headers: cookie('m1') }), 200, 'served; machine=m1'],
      ['a cookie for m2', http(maintenance, '/app/page', { headers: cookie('m2') }), 307, 'replayed; machine=m2'],
      ['a body too large to replay', http(maintenance, '/app/upload', { method: 'POST', headers: cookie('m2'), body: big }), 200, 'proxied; machine=m2'],
      ['m3 unreachable for a large body', http(maintenance, '/app/upload', { method: 'POST', headers: cookie('m3'), body: big }), 503, 'fallback; machine=m3'],
      ['fly-replay-failed', http(maintenance, '/app/page', { headers: { ...cookie('m2'), 'fly-replay-failed': 'reason=timeout' } }), 503, 'fallback; machine=m2'],
      ['fly-replay-failed, route_to_available', http(repin, '/app/page', { headers: { ...cookie('m2'), 'fly-replay-failed': 'reason=timeout' } }), 200, 're-pinned; machine=m1'],
      ['a tampered cookie', http(maintenance, '/app/page', { headers: cookie('m2"') }), 200, 'rejected=malformed; machine=m1'],
      ['proxied here by another Machine', http(maintenance, '/app/page', { headers: { ...cookie('m2'), 'x-navigator-via': 'm2' } }), 200, 'routed; machine=m2']
    ]
    for (const [why, answered, status, header] of cases) {
      const answer = await answered
      t.match({ status: answer.status, header: answer.headers[HEADER] }, { status, header }, why)
    }
    t.same(await handshake(maintenance, `${COOKIE}=m2`), { status: 307, header: 'replayed; machine=m2' }, 'a WebSocket handshake refused with a replay')
    t.same(await handshake(maintenance, `${COOKIE}=m1"`), { status: 101, header: undefined }, 'a 101 carries only the cookie')
    t.equal((await http(maintenance, '/elsewhere')).headers[HEADER], undefined, 'off the sticky paths: none')
  })

  test(`on ${path}, without debug_header no response carries it`, async (t) => {
    const peerUrl = await peer(t)
    const address = await start(t, { rawPath, debugHeader: false, fallback: 'maintenance', peerUrl })
    const answers = [
      await http(address, '/app/page'),
      await http(address, '/app/page', { headers: { cookie: `${COOKIE}=m2` } }),
      await http(address, '/app/upload', { method: 'POST', headers: { cookie: `${COOKIE}=m2` }, body: big }),
      await http(address, '/app/page', { headers: { cookie: `${COOKIE}=m2`, 'fly-replay-failed': 'reason=timeout' } }),
      await http(address, '/app/page', { headers: { cookie: `${COOKIE}=bad"` } })
    ]
    t.same(answers.map((answer) => answer.status), [200, 307, 200, 503, 200])
    t.same(answers.map((answer) => answer.headers[HEADER]), [undefined, undefined, undefined, undefined, undefined])
  })
}

for (const setting of ['left out', 'false']) {
  test(`through the real navigator, with debug_header ${setting}, no response on a sticky path carries it, whatever was decided`, async (t) => {
    const peerUrl = await peer(t)
    const sticky = (fallback: string): string[] => [
      '  fly:',
      '    max_replay_body: 10',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*"]',
      `      fallback_mode: ${fallback}`,
      ...setting === 'false' ? ['      debug_header: false'] : [],
      '      peers:',
      `        m2: "${peerUrl}"`
    ]
    const env = { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'debug', FLY_REGION: 'ord' }
    const maintenance = (await startSite(t, { routes: sticky('maintenance'), tenants: [tenant('app', '/app', 'start: eager')] }, { env, warm: ['/app/warm'] })).address
    const repin = (await startSite(t, { routes: sticky('route_to_available'), tenants: [tenant('app', '/app', 'start: eager')] }, { env, warm: ['/app/warm'] })).address
    const cookie = (machine: string): Record<string, string> => ({ cookie: `${COOKIE}=${machine}` })
    const cases: Array<[string, Promise<{ status: number, headers: Record<string, unknown> }>, number]> = [
      ['new', http(maintenance, '/app/page'), 200],
      ['own', http(maintenance, '/app/page', { headers: cookie('m1') }), 200],
      ['replayed', http(maintenance, '/app/page', { headers: cookie('m2') }), 307],
      ['proxied', http(maintenance, '/app/upload', { method: 'POST', headers: cookie('m2'), body: big }), 200],
      ['fallback', http(maintenance, '/app/page', { headers: { ...cookie('m2'), 'fly-replay-failed': 'reason=timeout' } }), 503],
      ['re-pinned', http(repin, '/app/page', { headers: { ...cookie('m2'), 'fly-replay-failed': 'reason=timeout' } }), 200],
      ['rejected', http(maintenance, '/app/page', { headers: cookie('m2"') }), 200],
      ['routed', http(maintenance, '/app/page', { headers: { ...cookie('m2'), 'x-navigator-via': 'm2' } }), 200]
    ]
    for (const [decision, answered, status] of cases) {
      const answer = await answered
      t.match({ status: answer.status, header: answer.headers[HEADER] }, { status, header: undefined }, `${decision}: ${status}, no ${HEADER}`)
    }
    t.same(await handshake(maintenance, `${COOKIE}=m2`), { status: 307, header: undefined }, 'a WebSocket handshake refused with a replay: none either')
  })
}
