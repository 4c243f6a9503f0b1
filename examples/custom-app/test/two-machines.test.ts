// The custom-app example as two Machines: two real copies of server.mjs (m1 and m2), each with its own upstream,
// each naming the other in PEERS so that the direct proxy works on 127.0.0.1. There is no Fly edge here: a replay
// answer comes back to the test, which is how the test sees that the request went no further.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { connect, createServer, type AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import * as sticky from '@navigator/sticky-sessions'
import { parseReplayHeader } from '@navigator/fly-replay'

const serverScript = fileURLToPath(new URL('../server.mjs', import.meta.url))
const COOKIE = sticky.DEFAULT_COOKIE_NAME
const BOOT_MS = 20_000

t.setTimeout(90_000)

// The largest body the sticky plugin answers with fly-replay, as the plugin resolves it for an app that leaves
// `maxReplayBody` alone (this one does): read from the package, never written here.
const REPLAY_LIMIT = sticky.resolveOptions({ machineId: 'm1' }).maxReplayBody

interface Machine {
  id: string
  origin: string
  port: number
  logs: Array<Record<string, unknown>>
}

interface Stats {
  machine: string
  app: number
  live: number
  upstream: { requests: number, webSockets: number }
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Every child started, stopped at the end whether or not it came up. */
const children: ChildProcess[] = []
t.teardown(() => Promise.all(children.map(stopChild)))

/** Starts server.mjs as one Machine and resolves once Fastify says it listens. */
function startMachine (id: string, port: number, upstreamPort: number, peers: string): Promise<Machine> {
  // Tap's loaders (NODE_OPTIONS) are for the tests, not for the app; nothing of Fly's environment leaks in.
  const { NODE_OPTIONS: _loaders, FLY_APP_NAME: _app, STICKY_SECRET: _secret, ...base } = process.env
  const env = { ...base, FLY_MACHINE_ID: id, PORT: String(port), UPSTREAM_PORT: String(upstreamPort), PEERS: peers, HOST: '127.0.0.1' }
  const child = spawn(process.execPath, [serverScript], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  const machine: Machine = { id, origin: `http://127.0.0.1:${port}`, port, logs: [] }
  let stderr = ''
  child.stderr?.on('data', (chunk) => { stderr += String(chunk) })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} did not start within ${BOOT_MS} ms: ${stderr}`)), BOOT_MS)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${id} exited with ${String(code)} before listening: ${stderr}`))
    })
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let entry: Record<string, unknown>
      try {
        entry = JSON.parse(line)
      } catch {
        return
      }
      machine.logs.push(entry)
      if (typeof entry.msg === 'string' && entry.msg.startsWith('Server listening at')) {
        clearTimeout(timer)
        resolve(machine)
      }
    })
  })
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

/** One HTTP exchange on a connection of its own. */
function send (origin: string, path: string, options: { method?: string, cookie?: string, body?: Buffer } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (options.cookie !== undefined) headers.cookie = options.cookie
  if (options.body !== undefined) {
    headers['content-type'] = 'application/octet-stream'
    headers['content-length'] = String(options.body.length)
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(origin + path, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

async function stats (machine: Machine): Promise<Stats> {
  const answer = await send(machine.origin, '/stats')
  return JSON.parse(String(answer.body)) as Stats
}

type Handshake =
  | { kind: 'open', setCookie: string[], reply: Record<string, unknown> }
  | { kind: 'refused', status: number, headers: IncomingHttpHeaders, body: string }

/**
 * Opens a WebSocket, sends one message and reads the answer; or reports the plain HTTP answer that refused the
 * upgrade (ws's 'unexpected-response'), which must come without an 'open'.
 */
function webSocket (machine: Machine, path: string, cookie?: string): Promise<Handshake> {
  const ws = new WebSocket(`ws://127.0.0.1:${machine.port}${path}`, { headers: cookie === undefined ? {} : { cookie } })
  let setCookie: string[] = []
  return new Promise((resolve, reject) => {
    ws.on('upgrade', (res) => { setCookie = res.headers['set-cookie'] ?? [] })
    ws.on('open', () => ws.send('hello'))
    ws.on('message', (data) => {
      resolve({ kind: 'open', setCookie, reply: JSON.parse(String(data)) })
      ws.close()
    })
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        resolve({ kind: 'refused', status: res.statusCode as number, headers: res.headers, body: Buffer.concat(chunks).toString() })
        ws.terminate()
      })
    })
    ws.on('error', reject)
  })
}

/** The replay the sticky plugin answers with for a cookie naming `machine`, as the fly-replay header reads. */
function replayTo (machine: Machine): object {
  return { instance: machine.id, state: sticky.STICKY_REPLAY_STATE }
}

/**
 * Sends an upgrade request on a raw socket and keeps its own side open: resolves to the answer's status line once
 * the server ends the connection, or to null when it has not within `ms`.
 */
function refusedUpgradeEnds (machine: Machine, path: string, cookie: string, ms: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect(machine.port, '127.0.0.1')
    let received = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(null)
    }, ms)
    socket.setEncoding('utf8')
    socket.on('data', (text: string) => { received += text })
    socket.on('end', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(received.split('\r\n', 1)[0])
    })
    socket.on('error', () => {})
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: ${cookie}\r\n\r\n`)
  })
}

function cookieFor (machine: Machine): string {
  return `${COOKIE}=${machine.id}`
}

/** The sticky cookie in a list of Set-Cookie values: the Machine it names, or undefined. */
function stickyMachine (setCookie: string[] | undefined): string | undefined {
  for (const line of setCookie ?? []) {
    const match = new RegExp(`^${COOKIE}=([^;]*)`).exec(line)
    if (match !== null) return match[1]
  }
  return undefined
}

function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A body whose bytes change along its length, so a lost or repeated chunk changes its hash. */
function bodyOf (length: number): Buffer {
  const body = Buffer.alloc(length)
  for (let i = 0; i < length; i++) body[i] = (i * 31 + (i >> 11)) & 0xff
  return body
}

const [port1, upstream1, port2, upstream2] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
const [m1, m2] = await Promise.all([
  startMachine('m1', port1, upstream1, `m2=http://127.0.0.1:${port2}`),
  startMachine('m2', port2, upstream2, `m1=http://127.0.0.1:${port1}`)
])

t.test('(a) a first visit on a sticky path is served here and gets a cookie naming this Machine', async (t) => {
  for (const machine of [m1, m2]) {
    const answer = await send(machine.origin, '/app/whoami')
    t.equal(answer.status, 200)
    t.equal(stickyMachine(answer.headers['set-cookie']), machine.id, 'the cookie names the Machine that answered')
    t.match(JSON.parse(String(answer.body)), { machine: machine.id, served: 'app', sticky: { machine: machine.id, action: 'serve' } })
  }
  const outside = await send(m1.origin, '/stats')
  t.equal(stickyMachine(outside.headers['set-cookie']), undefined, 'a path that is not sticky gets no cookie')
})

t.test('(b) a cookie for the other Machine gets fly-replay, and neither the route nor the upstream runs here', async (t) => {
  const before = await stats(m1)
  for (const path of ['/app/whoami', '/api/whoami']) {
    const answer = await send(m1.origin, path, { cookie: cookieFor(m2) })
    t.equal(answer.status, 307, path)
    t.match(parseReplayHeader(answer.headers['fly-replay']), replayTo(m2), `${path}: replayed to m2`)
    t.equal(answer.headers['set-cookie'], undefined, `${path}: the cookie stays on m2`)
    t.equal(String(answer.body), sticky.REPLAY_RESPONSE_BODY)
  }
  const after = await stats(m1)
  t.equal(after.app, before.app, 'the /app route did not run')
  t.equal(after.upstream.requests, before.upstream.requests, 'the upstream got nothing')
})

t.test('(c) @fastify/websocket route: the sticky decision comes before the handshake', async (t) => {
  const before = await stats(m1)
  const replayed = await webSocket(m1, '/live', cookieFor(m2))
  t.equal(replayed.kind, 'refused', 'never opened')
  if (replayed.kind === 'refused') {
    t.equal(replayed.status, 307)
    t.match(parseReplayHeader(replayed.headers['fly-replay']), replayTo(m2))
    t.equal(replayed.headers['set-cookie'], undefined)
  }
  t.equal((await stats(m1)).live, before.live, 'the handler never ran')

  const first = await webSocket(m1, '/live')
  t.equal(first.kind, 'open')
  if (first.kind === 'open') {
    t.equal(stickyMachine(first.setCookie), 'm1', 'the 101 carries the cookie naming this Machine')
    t.match(first.reply, { machine: 'm1', served: 'live', sticky: { machine: 'm1', action: 'serve' }, echo: 'hello' })
  }
})

t.test('(d) @fastify/http-proxy WebSocket: the sticky decision comes before the handshake', async (t) => {
  const before = await stats(m1)
  const replayed = await webSocket(m1, '/api/echo', cookieFor(m2))
  t.equal(replayed.kind, 'refused', 'never opened')
  if (replayed.kind === 'refused') {
    t.equal(replayed.status, 307)
    t.match(parseReplayHeader(replayed.headers['fly-replay']), replayTo(m2))
    t.equal(replayed.headers['set-cookie'], undefined)
  }
  t.equal((await stats(m1)).upstream.webSockets, before.upstream.webSockets, 'the upstream was never asked')

  const first = await webSocket(m1, '/api/echo')
  t.equal(first.kind, 'open')
  if (first.kind === 'open') {
    t.equal(stickyMachine(first.setCookie), 'm1', 'the 101 carries the cookie naming this Machine')
    t.match(first.reply, { machine: 'm1', served: 'upstream', url: '/echo', echo: 'hello' })
  }
  const own = await webSocket(m1, '/api/echo', cookieFor(m1))
  t.match(own, { kind: 'open', reply: { machine: 'm1', served: 'upstream' } }, "this Machine's cookie: proxied here")
})

t.test('an upgrade answered with a replay has its connection closed by the server, on both paths', async (t) => {
  for (const path of ['/live', '/api/echo']) {
    t.equal(await refusedUpgradeEnds(m1, path, cookieFor(m2), 2_000), 'HTTP/1.1 307 Temporary Redirect', path)
  }
})

t.test('(e) a body over the replay limit goes to the other Machine, byte for byte, and reaches its upstream', async (t) => {
  t.ok(REPLAY_LIMIT > 0 && REPLAY_LIMIT <= 1_048_576, `the replay limit is ${REPLAY_LIMIT} bytes`)

  const atLimit = await send(m1.origin, '/api/upload', { method: 'POST', cookie: cookieFor(m2), body: bodyOf(REPLAY_LIMIT) })
  t.equal(atLimit.status, 307, 'a body of exactly the limit is still replayed')
  t.match(parseReplayHeader(atLimit.headers['fly-replay']), replayTo(m2))

  const body = bodyOf(REPLAY_LIMIT + 1)
  const [before1, before2] = await Promise.all([stats(m1), stats(m2)])
  const answer = await send(m1.origin, '/api/upload', { method: 'POST', cookie: cookieFor(m2), body })
  t.equal(answer.status, 200)
  t.equal(answer.headers['fly-replay'], undefined, 'proxied, not replayed')
  const received = { machine: 'm2', served: 'upstream', method: 'POST', url: '/upload', bytes: body.length, sha256: sha256(body) }
  t.match(JSON.parse(String(answer.body)), received, "m2's upstream got the body intact")
  const [after1, after2] = await Promise.all([stats(m1), stats(m2)])
  t.equal(after1.upstream.requests, before1.upstream.requests, "m1's upstream got nothing")
  t.equal(after2.upstream.requests, before2.upstream.requests + 1, "m2's upstream answered")
  t.equal(stickyMachine(answer.headers['set-cookie']), 'm2', 'm2 renewed its own cookie')
})

t.test("(f) a proxied GET with this Machine's cookie reaches this Machine's upstream", async (t) => {
  const before = await stats(m1)
  const answer = await send(m1.origin, '/api/whoami?probe=1', { cookie: cookieFor(m1) })
  t.equal(answer.status, 200)
  t.match(JSON.parse(String(answer.body)), { machine: 'm1', served: 'upstream', method: 'GET', url: '/whoami?probe=1' })
  t.equal(stickyMachine(answer.headers['set-cookie']), 'm1', 'the cookie is renewed')
  t.equal((await stats(m1)).upstream.requests, before.upstream.requests + 1)
})

t.test('every upgrade had one owner: nothing was logged above info', async (t) => {
  for (const machine of [m1, m2]) {
    const loud = machine.logs.filter((entry) => typeof entry.level === 'number' && entry.level > 30)
    t.same(loud, [], machine.id)
  }
})
