import { test } from 'tap'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { connect as tcpConnect, createServer } from 'node:net'
import type { Socket } from 'node:net'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import WebSocket from 'ws'
import { ANSWERED_UPGRADE_LINGER_MS } from '@navigator/proxy'
import { CableHub } from '../src/cable-hub.js'
import { freePort, http, startFakeMachinesApi, startNavigator, tempDir, writeConfig } from './helpers.js'
import type { Answer, Running } from './helpers.js'

// cable: the TurboCable hub, through the real navigator process. Browsers' WebSockets on cable.path subscribe to
// streams; the apps POST broadcasts to cable.broadcast_path from this computer; the hub sends each broadcast to the
// stream's subscribers, in the Go Navigator's JSON messages.

interface Teardown { teardown (fn: () => unknown): void }

/** How long any one expected event may take on a loaded machine before the test fails. */
const BOUND_MS = 10_000

function hubConfig (lines: { server?: string[], top?: string[] } = {}): string {
  return [
    'server:',
    '  listen: "127.0.0.1:0"',
    ...lines.server ?? [],
    'cable:',
    '  enabled: true',
    ...lines.top ?? [],
    ''
  ].join('\n')
}

async function startHub (t: Teardown, lines: { server?: string[], top?: string[] } = {}, env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}): Promise<Running> {
  const dir = tempDir(files)
  writeConfig(dir, hubConfig(lines))
  return await startNavigator(t, dir, env)
}

/** A WebSocket client whose text messages queue up, read one at a time (each within BOUND_MS). */
class Client {
  readonly ws: WebSocket
  readonly opened: Promise<void>
  readonly closed: Promise<{ code: number }>
  private readonly queue: string[] = []
  private waiter: ((text: string) => void) | null = null

  constructor (url: string, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, options)
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => { resolve() })
      this.ws.once('error', reject)
      this.ws.once('unexpected-response', (_req, res) => { reject(new Error(`unexpected ${String(res.statusCode)}`)) })
    })
    this.closed = new Promise((resolve) => { this.ws.once('close', (code) => { resolve({ code }) }) })
    this.ws.on('message', (data) => {
      const text = String(data)
      if (this.waiter !== null) {
        const waiter = this.waiter
        this.waiter = null
        waiter(text)
      } else this.queue.push(text)
    })
  }

  async next (): Promise<string> {
    const queued = this.queue.shift()
    if (queued !== undefined) return queued
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null
        reject(new Error(`no message within ${BOUND_MS} ms`))
      }, BOUND_MS)
      this.waiter = (text) => {
        clearTimeout(timer)
        resolve(text)
      }
    })
  }

  send (message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** Subscribes and returns the hub's confirmation. */
  async subscribe (stream: string): Promise<string> {
    this.send({ type: 'subscribe', stream })
    return await this.next()
  }
}

async function connect (t: Teardown, address: string, path = '/cable', options: WebSocket.ClientOptions = {}): Promise<Client> {
  const client = new Client(`${address.replace('http', 'ws')}${path}`, options)
  t.teardown(() => { client.ws.terminate() })
  await client.opened
  return client
}

async function broadcast (address: string, body: unknown, path = '/_broadcast'): Promise<Answer> {
  return await http(address, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })
}

async function within<T> (promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: not within ${BOUND_MS} ms`)) }, BOUND_MS) })
  try {
    return await Promise.race([promise, expired])
  } finally {
    clearTimeout(timer)
  }
}

test('a subscriber gets its confirmation, then the broadcasts to its stream, and none after it unsubscribes', async (t) => {
  const nav = await startHub(t)
  const client = await connect(t, nav.address)
  t.equal(await client.subscribe('scores'), '{"type":"subscribed","stream":"scores"}', 'nothing on connect: the first message is the confirmation')

  const sent = await broadcast(nav.address, { stream: 'scores', data: '<turbo-stream action="replace" target="s1"><template>1-0</template></turbo-stream>' })
  t.match(sent, { status: 200, text: '' }, 'the broadcast is accepted, with an empty answer')
  t.equal(await client.next(), '{"type":"message","stream":"scores","data":"\\u003cturbo-stream action=\\"replace\\" target=\\"s1\\"\\u003e\\u003ctemplate\\u003e1-0\\u003c/template\\u003e\\u003c/turbo-stream\\u003e"}',
    'a Turbo Stream, escaped as Go\'s encoder escapes <, > and &')
  await broadcast(nav.address, { type: 'ignored', stream: 'scores', data: { progress: 40, status: 'processing', list: [1, null, true] } })
  t.equal(await client.next(), '{"type":"message","stream":"scores","data":{"progress":40,"status":"processing","list":[1,null,true]}}', 'JSON data as JSON')
  await broadcast(nav.address, '{ "Stream" : "scores",\n  "data" : { "b" : 1, "2" : [ 2 , 3 ], "big" : 12345678901234567890, "x" : 1.50, "s" : "a & b \\u00e9" } }')
  t.equal(await client.next(), '{"type":"message","stream":"scores","data":{"b":1,"2":[2,3],"big":12345678901234567890,"x":1.50,"s":"a \\u0026 b \\u00e9"}}',
    'the data\'s own JSON, compacted: keys in their order, numbers as written; keys matched whatever their case')
  await broadcast(nav.address, { stream: 'scores' })
  t.equal(await client.next(), '{"type":"message","stream":"scores"}', 'no data: no data key')
  await broadcast(nav.address, { stream: 'scores', data: null })
  t.equal(await client.next(), '{"type":"message","stream":"scores","data":null}', 'null data: kept')

  client.send({ type: 'unsubscribe', stream: 'scores' })
  t.equal(await client.subscribe('other'), '{"type":"subscribed","stream":"other"}', 'no answer to an unsubscribe')
  t.match(await broadcast(nav.address, { stream: 'scores', data: 'missed' }), { status: 200 }, 'a stream without subscribers: 200 all the same')
  await broadcast(nav.address, { stream: 'other', data: 'seen' })
  t.equal(await client.next(), '{"type":"message","stream":"other","data":"seen"}', 'the unsubscribed stream\'s broadcast never came')

  t.equal(await client.subscribe('other'), '{"type":"subscribed","stream":"other"}', 'subscribing twice is confirmed again')
  await broadcast(nav.address, { stream: 'other', data: 1 })
  t.equal(await client.next(), '{"type":"message","stream":"other","data":1}')
  await broadcast(nav.address, { stream: 'other', data: 2 })
  t.equal(await client.next(), '{"type":"message","stream":"other","data":2}', 'and gets each broadcast once')
})

test('two streams are isolated: each subscriber gets its own stream\'s broadcasts only', async (t) => {
  const nav = await startHub(t)
  const [a, b, both] = await Promise.all([connect(t, nav.address), connect(t, nav.address), connect(t, nav.address)])
  await a.subscribe('a')
  await b.subscribe('b')
  await both.subscribe('a')
  await both.subscribe('b')
  for (const [stream, data] of [['b', 'b1'], ['a', 'a1'], ['b', 'b2'], ['a', 'a2']]) {
    t.equal((await broadcast(nav.address, { stream, data })).status, 200)
  }
  const message = (stream: string, data: string): string => `{"type":"message","stream":"${stream}","data":"${data}"}`
  t.same([await a.next(), await a.next()], [message('a', 'a1'), message('a', 'a2')], 'a: a1, a2 and nothing of b')
  t.same([await b.next(), await b.next()], [message('b', 'b1'), message('b', 'b2')], 'b: b1, b2 and nothing of a')
  t.same([await both.next(), await both.next(), await both.next(), await both.next()],
    [message('b', 'b1'), message('a', 'a1'), message('b', 'b2'), message('a', 'a2')], 'both: everything, in order')
})

test('the hub pings every interval; a client that answers stays, one that does not is disconnected', async (t) => {
  const nav = await startHub(t, {}, { NAVIGATOR_CABLE_PING_INTERVAL: '2s' })
  const answering = await connect(t, nav.address)
  const silent = await connect(t, nav.address)
  const framing = await connect(t, nav.address)
  await silent.subscribe('s')
  t.equal(await answering.next(), '{"type":"ping"}', 'a ping message, as JSON text')
  answering.send({ type: 'pong' })
  let pings = 1
  for (; pings < 4; pings++) {
    t.equal(await framing.next(), '{"type":"ping"}')
    framing.ws.pong()
    t.equal(await answering.next(), '{"type":"ping"}')
    answering.send({ type: 'pong' })
  }
  const { code } = await within(silent.closed, 'the silent client closed')
  t.equal(code, 1006, 'the silent client is cut off (no close frame, as the Go Navigator closes it)')
  t.equal(answering.ws.readyState, WebSocket.OPEN, `answering {"type":"pong"}: still open after ${pings} pings`)
  t.equal(framing.ws.readyState, WebSocket.OPEN, 'answering with pong frames: still open too')
  await answering.subscribe('s')
  await broadcast(nav.address, { stream: 's', data: 'after' })
  let text = await answering.next()
  while (text === '{"type":"ping"}') text = await answering.next()
  t.equal(text, '{"type":"message","stream":"s","data":"after"}', 'the stream of the dropped client still works for the others')
})

test('messages the protocol does not know are ignored, a too large one closes its socket with 1009, and the broadcast path answers wrong requests as the Go Navigator does', async (t) => {
  const nav = await startHub(t)
  const client = await connect(t, nav.address)
  for (const text of ['not json', '[1,2]', '42', 'null', '{"type":5,"stream":"x"}', '{"type":"subscribe"}', '{"type":"subscribe","stream":""}',
    '{"type":"subscribe","stream":7}', '{"type":"ping"}', '{"type":"dance","stream":"x"}', '{"type":"subscribe","stream":"x"']) {
    client.send(text)
  }
  client.ws.send(Buffer.from([0xff, 0x00, 0x7b]), { binary: true })
  t.equal(await client.subscribe('ok'), '{"type":"subscribed","stream":"ok"}', 'nothing answered any of them: the next message is this confirmation')
  client.ws.send(Buffer.from('{"type":"subscribe","stream":"bin"}'), { binary: true })
  t.equal(await client.next(), '{"type":"subscribed","stream":"bin"}', 'a binary message holding JSON is read as the Go Navigator reads it')

  const large = await connect(t, nav.address)
  large.send({ type: 'subscribe', stream: 'x'.repeat(130 * 1024) })
  t.equal((await within(large.closed, 'the large message\'s socket closed')).code, 1009)

  t.match(await http(nav.address, '/_broadcast'), { status: 405, text: 'Method not allowed\n', headers: { allow: 'POST' } })
  t.match(await broadcast(nav.address, 'not json'), { status: 400, text: 'Invalid JSON\n' })
  t.match(await broadcast(nav.address, ''), { status: 400, text: 'Invalid JSON\n' })
  t.match(await broadcast(nav.address, '[]'), { status: 400, text: 'Invalid JSON\n' })
  t.match(await broadcast(nav.address, { stream: 7 }), { status: 400, text: 'Invalid JSON\n' })
  t.match(await broadcast(nav.address, { data: 'x' }), { status: 400, text: 'Stream required\n' })
  t.match(await broadcast(nav.address, { stream: '' }), { status: 400, text: 'Stream required\n' })
  t.match(await broadcast(nav.address, 'x'.repeat(4 * 1024 * 1024 + 1)), { status: 413 })
  t.match(await http(nav.address, '/cable'), { status: 400, text: 'Bad Request\n', headers: { 'sec-websocket-version': '13' } }, 'a plain GET of the WebSocket path')

  await broadcast(nav.address, { stream: 'ok', data: 'still here' })
  t.equal(await client.next(), '{"type":"message","stream":"ok","data":"still here"}', 'after all of it the hub works')
  t.equal(nav.child.exitCode, null, 'navigator runs on')
})

/** An IPv4 or IPv6 address of this machine that is not a loopback one, or null. */
function outsideAddress (): string | null {
  const all = Object.values(networkInterfaces()).flat().filter((entry) => entry !== undefined && !entry.internal)
  const v4 = all.find((entry) => entry?.family === 'IPv4')
  const v6 = all.find((entry) => entry?.family === 'IPv6' && !entry.address.startsWith('fe80'))
  return v4?.address ?? v6?.address ?? null
}

/** A POST from `localAddress` to `host:port`: a real socket whose peer address is what the server checks. */
async function postFrom (localAddress: string, host: string, port: number, path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number, text: string }> {
  return await new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'POST', localAddress, headers, agent: false }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text }) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

test('a broadcast from an address that is not this computer\'s loopback gets 403, whatever its headers, and before auth', async (t) => {
  const outside = outsideAddress()
  if (outside === null) {
    t.skip('this machine has no address but loopback ones: a peer from elsewhere cannot be made here')
    return
  }
  const port = await freePort()
  const dir = tempDir({ htpasswd: `ann:{SHA}${createHash('sha1').update('secret').digest('base64')}\n` })
  // Every address of this machine, so that a client can come from outside loopback; auth on for every path.
  writeConfig(dir, [
    'server:',
    `  listen: "${outside.includes(':') ? `[::]:${port}` : `0.0.0.0:${port}`}"`,
    'auth:',
    '  enabled: true',
    '  htpasswd: htpasswd',
    'cable:',
    '  enabled: true',
    ''
  ].join('\n'))
  const wide = await startNavigator(t, dir)
  const body = JSON.stringify({ stream: 's', data: 'x' })
  const json = { 'content-type': 'application/json' }

  const client = await connect(t, wide.address, '/cable', { headers: { authorization: `Basic ${Buffer.from('ann:secret').toString('base64')}` } })
  await client.subscribe('s')

  const refused = await postFrom(outside, outside, port, '/_broadcast', body, json)
  t.same(refused, { status: 403, text: 'Forbidden\n' }, `from ${outside}: 403, not the 401 of auth`)
  const forged = await postFrom(outside, outside, port, '/_broadcast', body, { ...json, 'x-forwarded-for': '127.0.0.1', 'fly-client-ip': '127.0.0.1', forwarded: 'for=127.0.0.1' })
  t.same(forged, { status: 403, text: 'Forbidden\n' }, 'headers naming a loopback address change nothing: the socket\'s peer decides')
  const getFromOutside = await new Promise<number>((resolve, reject) => {
    request({ host: outside, port, path: '/_broadcast', localAddress: outside, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject).end()
  })
  t.equal(getFromOutside, 403, 'any method from outside: 403 first')

  if (!outside.includes(':')) {
    t.same(await postFrom('127.0.0.1', '127.0.0.1', port, '/_broadcast', body, json), { status: 200, text: '' }, 'from 127.0.0.1, without a password: accepted (before auth)')
    t.equal(await client.next(), '{"type":"message","stream":"s","data":"x"}', 'and sent')
    t.same(await postFrom('127.0.0.5', '127.0.0.1', port, '/_broadcast', JSON.stringify({ stream: 's', data: 'y' }), json), { status: 200, text: '' }, 'from 127.0.0.5: 127.0.0.0/8 is loopback')
    t.equal(await client.next(), '{"type":"message","stream":"s","data":"y"}')
  }
  const anonymous = new Client(`${wide.address.replace('http', 'ws')}/cable`)
  t.teardown(() => { anonymous.ws.terminate() })
  await t.rejects(anonymous.opened, /unexpected 401/, 'the WebSocket path is behind auth')
})

test('a subscriber that stops reading misses broadcasts once 4 MiB wait for it, and the others get every one', async (t) => {
  const nav = await startHub(t)
  const [frozen, reading] = await Promise.all([connect(t, nav.address), connect(t, nav.address)])
  await frozen.subscribe('big')
  await reading.subscribe('big')
  // The frozen client's socket stops reading: the kernel's buffers fill, then Navigator's for that socket.
  const socket = (frozen.ws as unknown as { _socket: { pause: () => void } })._socket
  socket.pause()
  const data = 'x'.repeat(1024 * 1024)
  let sent = 0
  const dropped = nav.waitForLog((line) => line.msg === 'cable broadcast dropped for subscribers that do not read' && line.dropped === 1, 60_000)
  let seen = false
  void dropped.then(() => { seen = true }, () => {})
  while (!seen && sent < 60) {
    t.equal((await broadcast(nav.address, { stream: 'big', data })).status, 200)
    sent++
    const text = await reading.next()
    if (text.length < data.length) t.fail(`the reading client got ${text.slice(0, 80)}`)
    // The line, when this broadcast skipped the frozen client, is written before the answer: a moment for it to arrive.
    await Promise.race([dropped, new Promise((resolve) => setTimeout(resolve, 50))]).catch(() => {})
  }
  await dropped
  t.ok(sent < 60, `after ${sent} broadcasts of 1 MiB, the frozen client is skipped (with a warn line), and the reading one got each`)
  t.equal(frozen.ws.readyState, WebSocket.OPEN, 'the frozen client is not disconnected for it')
})

test('when navigator stops, every hub WebSocket gets a close frame 1001 and navigator exits', async (t) => {
  const nav = await startHub(t)
  const clients = await Promise.all(Array.from({ length: 5 }, async () => await connect(t, nav.address)))
  for (const [index, client] of clients.entries()) await client.subscribe(`s${index % 2}`)
  nav.child.kill('SIGTERM')
  const codes = await within(Promise.all(clients.map(async (client) => (await client.closed).code)), 'every socket closed')
  t.same(codes, [1001, 1001, 1001, 1001, 1001], 'going away, to each')
  const { code } = await within(nav.exited, 'navigator exited')
  t.equal(code, 0, 'and navigator exits cleanly: no socket holds it')
  t.ok(nav.logs.some((line) => line.msg === 'closing cable websockets' && line.count === 5), 'it says how many it closed')
})

test('the hub fans a broadcast out to 1,000 subscribers', async (t) => {
  const nav = await startHub(t)
  const clients: Client[] = []
  for (let batch = 0; batch < 10; batch++) {
    clients.push(...await Promise.all(Array.from({ length: 100 }, async () => await connect(t, nav.address))))
  }
  const confirmations = await Promise.all(clients.map(async (client) => await client.subscribe('everyone')))
  t.ok(confirmations.every((text) => text === '{"type":"subscribed","stream":"everyone"}'), '1,000 confirmations')
  t.equal((await broadcast(nav.address, { stream: 'everyone', data: { n: 1 } })).status, 200)
  const received = await Promise.all(clients.map(async (client) => await client.next()))
  t.equal(received.filter((text) => text === '{"type":"message","stream":"everyone","data":{"n":1}}').length, 1000, 'every one of them got it')
  for (const client of clients) client.ws.close()
  await within(Promise.all(clients.map(async (client) => await client.closed)), 'the 1,000 sockets closed')
})

test('an open hub WebSocket counts as activity: the Machine is not suspended while it is open', async (t) => {
  const dir = tempDir()
  const apiSocket = join(dir, 'api.sock')
  const { calls, firstCall } = await startFakeMachinesApi(t, apiSocket)
  // The idle timer starts at listen, not at the first request: 3 s leaves room for a loaded machine before the socket opens.
  writeConfig(dir, hubConfig({ server: ['  idle:', '    action: suspend', '    timeout: 3s', `    api_socket: ${JSON.stringify(apiSocket)}`] }))
  const nav = await startNavigator(t, dir, { FLY_MACHINE_ID: 'm1abc', FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' })
  const client = await connect(t, nav.address)
  await client.subscribe('s')
  // Well past the idle timeout, with the socket open and quiet.
  await new Promise((resolve) => setTimeout(resolve, 6_000))
  t.same(calls, [], 'no suspend while the WebSocket is open')
  const closedAt = Date.now()
  client.ws.close()
  await within(firstCall, 'the suspend after the socket closed')
  t.ok(Date.now() - closedAt >= 2900, 'the idle timeout counts from the close')
  t.same(calls[0], { method: 'POST', url: '/v1/apps/navtest/machines/m1abc/suspend' })
})

test('sticky sessions decide a hub upgrade first: a cookie for another Machine is replayed there, this Machine\'s gets the hub', async (t) => {
  const nav = await startHub(t, {
    top: [
      'routes:',
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/cable"]',
      '      peers:',
      `        m2: "http://127.0.0.1:${await freePort()}"`
    ]
  }, { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'hub', FLY_REGION: 'ord' })
  const url = `${nav.address.replace('http', 'ws')}/cable`

  const replayed = await new Promise<{ status: number, headers: Record<string, unknown> }>((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { cookie: '_navigator_machine=m2' } })
    t.teardown(() => { ws.terminate() })
    ws.once('open', () => { reject(new Error('the hub took a WebSocket that belongs to m2')) })
    ws.once('unexpected-response', (_req, res) => { res.resume(); resolve({ status: res.statusCode ?? 0, headers: res.headers }) })
    ws.once('error', reject)
  })
  t.match(replayed, { status: 307, headers: { 'fly-replay': /^instance=m2/ } }, 'a cookie for m2: the sticky decision, a fly-replay answer')

  const fresh = new Client(url)
  t.teardown(() => { fresh.ws.terminate() })
  const cookie = await new Promise<unknown>((resolve) => { fresh.ws.once('upgrade', (res) => { resolve(res.headers['set-cookie']) }) })
  await fresh.opened
  t.match(cookie, [/^_navigator_machine=m1;/], 'no cookie: the hub, and the 101 pins this Machine')
  t.equal(await fresh.subscribe('s'), '{"type":"subscribed","stream":"s"}')

  const mine = await connect(t, nav.address, '/cable', { headers: { cookie: '_navigator_machine=m1' } })
  t.equal(await mine.subscribe('s'), '{"type":"subscribed","stream":"s"}', 'a cookie for this Machine: the hub')
  await broadcast(nav.address, { stream: 's', data: 'both' })
  t.same([await fresh.next(), await mine.next()], ['{"type":"message","stream":"s","data":"both"}', '{"type":"message","stream":"s","data":"both"}'])
})

test('a reload keeps the hub\'s WebSockets and their subscriptions; cable.path and broadcast_path follow the configuration', async (t) => {
  const nav = await startHub(t)
  const client = await connect(t, nav.address)
  await client.subscribe('s')
  writeConfig(nav.dir, hubConfig({ top: ['  path: /ws', '  broadcast_path: /internal/broadcast'] }))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded', BOUND_MS)
  t.equal((await broadcast(nav.address, { stream: 's', data: 'kept' }, '/internal/broadcast')).status, 200)
  t.equal(await client.next(), '{"type":"message","stream":"s","data":"kept"}', 'the socket opened before the reload gets a broadcast made after it')
  t.equal((await broadcast(nav.address, { stream: 's' })).status, 404, 'the old broadcast path is no longer the hub\'s')
  const moved = await connect(t, nav.address, '/ws')
  t.equal(await moved.subscribe('s'), '{"type":"subscribed","stream":"s"}', 'the new path opens hub WebSockets')
})

test('an invalid NAVIGATOR_CABLE_PING_INTERVAL is a usage error: exit 2 and the reason', async (t) => {
  const dir = tempDir()
  writeConfig(dir, hubConfig())
  await t.rejects(startNavigator(t, dir, { NAVIGATOR_CABLE_PING_INTERVAL: 'soon' }), /exited with 2: .*NAVIGATOR_CABLE_PING_INTERVAL must be a duration above zero/)
  await t.rejects(startNavigator(t, dir, { NAVIGATOR_CABLE_PING_INTERVAL: '0s' }), /exited with 2: /)
})

test('off (the default): cable.path and broadcast_path are not the hub\'s and go on like any request', async (t) => {
  const dir = tempDir()
  writeConfig(dir, 'server:\n  listen: "127.0.0.1:0"\ncable:\n  path: /cable\n')
  const nav = await startNavigator(t, dir)
  t.equal((await broadcast(nav.address, { stream: 's' })).status, 404)
  t.equal((await http(nav.address, '/cable')).status, 404)
})

test('with auth on, an upgrade opened by another site\'s page is refused (403): the browser would send the password for it', async (t) => {
  const hub = await startHub(t)
  const dir = tempDir({ htpasswd: `ann:{SHA}${createHash('sha1').update('secret').digest('base64')}\n` })
  writeConfig(dir, hubConfig() + 'auth:\n  enabled: true\n  htpasswd: htpasswd\n')
  const guarded = await startNavigator(t, dir)
  const authorization = `Basic ${Buffer.from('ann:secret').toString('base64')}`
  const host = new URL(guarded.address).host
  const refused = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${guarded.address.replace('http', 'ws')}/cable`, { headers: { authorization, origin: 'https://elsewhere.example' } })
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0) })
    ws.once('open', () => { ws.terminate(); resolve(101) })
    ws.once('error', reject)
  })
  t.equal(refused, 403, 'another site\'s page')
  const own = await connect(t, guarded.address, '/cable', { headers: { authorization, origin: `http://${host}` } })
  t.equal(await own.subscribe('s'), JSON.stringify({ type: 'subscribed', stream: 's' }), 'a page of this site')
  const tool = await connect(t, guarded.address, '/cable', { headers: { authorization } })
  t.equal(await tool.subscribe('s'), JSON.stringify({ type: 'subscribed', stream: 's' }), 'a client that is not a browser (no Origin)')
  const open = await connect(t, hub.address, '/cable', { headers: { origin: 'https://elsewhere.example' } })
  t.equal(await open.subscribe('s'), JSON.stringify({ type: 'subscribed', stream: 's' }), 'without auth, as the Go hub: any origin')
})

test('a WebSocket that subscribes to more than 1,000 streams is closed with 1008', async (t) => {
  const hub = await startHub(t)
  const client = await connect(t, hub.address)
  for (let n = 0; n < 1000; n++) client.send({ type: 'subscribe', stream: `s${n}` })
  for (let n = 0; n < 1000; n++) await client.next()
  client.send({ type: 'subscribe', stream: 's0' })
  t.equal(await client.next(), JSON.stringify({ type: 'subscribed', stream: 's0' }), 'one it has again: fine')
  client.send({ type: 'subscribe', stream: 'one-too-many' })
  t.same(await within(client.closed, 'the close'), { code: 1008 })
})

test('the status page counts the hub\'s WebSockets and their streams', async (t) => {
  const hub = await startHub(t, { server: ['  status: {}'] })
  const client = await connect(t, hub.address)
  await client.subscribe('a')
  await client.subscribe('b')
  const status = JSON.parse((await http(hub.address, '/navigator/status.json')).text) as { machine: { cable: unknown } }
  t.same(status.machine.cable, { webSockets: 1, streams: 2 })
  t.match((await http(hub.address, '/navigator/status')).text, /Cable hub.*1 <small>on 2 streams<\/small>/s)
})

test('a hub that is closing refuses an upgrade with 503 and lets go of its socket even when the client holds its side open', async (t) => {
  const hub = new CableHub({ log: pino({ level: 'silent' }), machineIdle: null })
  await hub.closeAll()
  const accepted = new Promise<Socket>((resolve) => {
    const server = createServer(resolve)
    t.teardown(() => { server.close() })
    server.listen(0, '127.0.0.1', () => {
      const client = tcpConnect((server.address() as { port: number }).port, '127.0.0.1')
      t.teardown(() => { client.destroy() })
      let received = ''
      client.on('data', (chunk: Buffer) => { received += chunk.toString() })
      // The client never ends its side: only Navigator can close the connection.
      client.once('end', () => { clientEnded(received) })
    })
  })
  let clientEnded: (received: string) => void = () => {}
  const ended = new Promise<string>((resolve) => { clientEnded = resolve })
  const socket = await accepted
  const closed = new Promise<number>((resolve) => { const at = Date.now(); socket.once('close', () => { resolve(Date.now() - at) }) })
  const req = { headers: { upgrade: 'websocket', connection: 'upgrade' }, url: '/cable', method: 'GET' } as unknown as IncomingMessage
  hub.accept(req, socket, Buffer.alloc(0), [])
  t.match(await ended, /^HTTP\/1\.1 503 Service Unavailable\r\n/, 'the client got the 503, then the server\'s FIN')
  const bound = new Promise<null>((resolve) => { setTimeout(resolve, ANSWERED_UPGRADE_LINGER_MS + 5_000, null).unref() })
  t.not(await Promise.race([closed, bound]), null, `the socket was destroyed after the linger (${ANSWERED_UPGRADE_LINGER_MS} ms), the client still holding it`)
})
