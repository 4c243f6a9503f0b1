import { test, type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable, Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, request } from 'undici'
import { ASLEEP_HINT, createDirectRouter, DEFAULT_COOKIE_NAME, resolveOptions, stickySessions, type StickySessionsOptions } from '../src/index.js'
import { setCookies, type LogLine } from './helpers.js'

const MiB = 1024 * 1024
/** Fly's replay limit: 1 MB. */
const MB = 1_000_000

/** A Navigator-like Machine: sticky sessions plus a route that answers with the sha256 of the streamed body. */
interface Machine {
  app: FastifyInstance
  url: string
  /** Requests that reached this Machine's own route. */
  handled: string[]
  /** Their headers. */
  seen: Array<Record<string, unknown>>
  logs: LogLine[]
}

async function machine (t: Test, machineId: string, options: StickySessionsOptions = {}): Promise<Machine> {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      callback()
    }
  })
  const app = Fastify({ logger: { level: 'warn', stream } })
  const handled: string[] = []
  const seen: Array<Record<string, unknown>> = []
  await app.register(stickySessions, { machineId, ...options })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
  app.all('/*', async (request) => {
    handled.push(request.url)
    seen.push(request.headers)
    const hash = createHash('sha256')
    let size = 0
    if (request.body !== undefined) {
      for await (const chunk of request.body as Readable) {
        size += (chunk as Buffer).length
        hash.update(chunk as Buffer)
      }
    }
    return { servedBy: machineId, size, sha256: hash.digest('hex'), sticky: request.stickySession }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, handled, seen, logs }
}

/** A plain server standing in for Fly's proxy at the Flycast address: records each request and its body's hash. */
async function flycastStandIn (t: Test): Promise<{ url: string, seen: Array<{ headers: http.IncomingHttpHeaders, size: number, sha256: string }> }> {
  const seen: Array<{ headers: http.IncomingHttpHeaders, size: number, sha256: string }> = []
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256')
    let size = 0
    req.on('data', (chunk: Buffer) => { size += chunk.length; hash.update(chunk) })
    req.on('end', () => {
      seen.push({ headers: req.headers, size, sha256: hash.digest('hex') })
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ servedBy: req.headers['fly-force-instance-id'] }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

async function closedPort (): Promise<string> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  await new Promise((resolve) => server.close(resolve))
  return url
}

function client (t: Test): Agent {
  const agent = new Agent()
  t.teardown(async () => await agent.close())
  return agent
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
const pinnedTo = (id: string): Record<string, string> => ({ cookie: `${DEFAULT_COOKIE_NAME}=${id}` })

test('a POST of 1 MB (1,000,000 bytes) for another Machine is replayed', async (t) => {
  const m2 = await machine(t, 'm2')
  const m1 = await machine(t, 'm1', { peers: { m2: m2.url } })
  const dispatcher = client(t)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: randomBytes(MB), headers: pinnedTo('m2') })
  t.equal(res.statusCode, 307)
  t.match(res.headers['fly-replay'], /^instance=m2;/)
  await res.body.text()
})

test('a POST of 1,000,001 bytes reaches the other Machine through the direct proxy, byte-identical and marked', async (t) => {
  const m2 = await machine(t, 'm2')
  const m1 = await machine(t, 'm1', { peers: { m2: m2.url } })
  const dispatcher = client(t)
  const body = randomBytes(MB + 1)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body, headers: pinnedTo('m2') })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['fly-replay'], undefined)
  const answer = await res.body.json() as Record<string, unknown>
  t.same(answer, { servedBy: 'm2', size: MB + 1, sha256: sha(body), sticky: { machine: 'm2', action: 'serve' } })
  t.same(setCookies(res.headers).map((c) => c.split(';')[0]), [`${DEFAULT_COOKIE_NAME}=m2`], 'only the target re-sets the cookie')
  t.same(m1.handled, [], 'the proxying Machine does not also handle the request')
  t.equal(m2.seen[0]['x-navigator-via'], 'm1', 'the hop is marked with the Machine that made it')
})

test('maxReplayBody is the limit: a body up to it is replayed, one byte more is proxied', async (t) => {
  const m2 = await machine(t, 'm2')
  const m1 = await machine(t, 'm1', { peers: { m2: m2.url }, maxReplayBody: 1024 })
  const dispatcher = client(t)
  const at = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: randomBytes(1024), headers: pinnedTo('m2') })
  t.equal(at.statusCode, 307)
  await at.body.text()
  const over = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: randomBytes(1025), headers: pinnedTo('m2') })
  t.equal(over.statusCode, 200)
  t.match(await over.body.json(), { servedBy: 'm2', size: 1025 })
})

test('a direct-proxied request that lands on the wrong Machine is served there and never proxied again', async (t) => {
  const m3 = await machine(t, 'm3', { peers: { m2: 'http://127.0.0.1:9' } })
  const m1 = await machine(t, 'm1', { peers: { m2: m3.url } })
  const dispatcher = client(t)
  const body = randomBytes(MiB)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body, headers: pinnedTo('m2') })
  t.equal(res.statusCode, 200, 'one hop spent: served where it arrived')
  t.same(await res.body.json(), { servedBy: 'm3', size: MiB, sha256: sha(body), sticky: { machine: 'm2', action: 'serve' } })
  t.equal(res.headers['set-cookie'], undefined, 'and the cookie is left on m2')
  t.same(m3.handled, ['/app/upload'])
})

test('a chunked 20 MiB POST reaches the other Machine through the direct proxy, byte-identical', async (t) => {
  const m2 = await machine(t, 'm2')
  const m1 = await machine(t, 'm1', { peers: { m2: m2.url } })
  const dispatcher = client(t)
  const chunks = Array.from({ length: 20 }, () => randomBytes(MiB))
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'PUT', body: Readable.from(chunks), headers: pinnedTo('m2') })
  const answer = await res.body.json() as Record<string, unknown>
  t.equal(answer.servedBy, 'm2')
  t.equal(answer.size, 20 * MiB)
  t.equal(answer.sha256, sha(Buffer.concat(chunks)))
  t.same(m1.handled, [], 'the proxying Machine does not also handle the request')
})

test('vm: an unreachable Machine that discovery lists is asleep: 503, Retry-After, cookie kept, in both fallback modes', async (t) => {
  for (const fallbackMode of ['maintenance', 'route_to_available'] as const) {
    const m1 = await machine(t, 'm1', { peers: { m2: await closedPort() }, fallbackMode })
    const dispatcher = client(t)
    const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: randomBytes(2 * MiB), headers: pinnedTo('m2') })
    t.equal(res.statusCode, 503, fallbackMode)
    t.equal(res.headers['retry-after'], '5')
    t.equal(res.headers['set-cookie'], undefined, `${fallbackMode}: the cookie still names m2, where the data is`)
    await res.body.text()
    t.same(m1.handled, [])
    const warn = m1.logs.find((l) => l.msg === 'machine unavailable')
    t.match(warn, { level: 40, machine: 'm2', hint: ASLEEP_HINT }, 'the warning says the body cannot wake it and what would')
  }
})

test('vm: an unreachable Machine that discovery no longer lists is gone: cookie rejected, served here', async (t) => {
  let asked = 0
  // Listed when the request arrives, gone by the time the connection failed (a refresh in between).
  const m1 = await machine(t, 'm1', { discovery: { has: () => ++asked === 1 }, peers: { m2: await closedPort() } })
  const dispatcher = client(t)
  const body = randomBytes(2 * MiB)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body, headers: pinnedTo('m2') })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { servedBy: 'm1', size: 2 * MiB, sha256: sha(body), sticky: { machine: 'm1', action: 'serve' } })
  t.match(setCookies(res.headers)[0], /^_navigator_machine=m1;/)
  t.ok(m1.logs.some((l) => l.level === 40 && l.reason === 'machine-unknown'))
})

test('flycast: the body goes to the Flycast address with fly-force-instance-id and the loop marker', async (t) => {
  const flycast = await flycastStandIn(t)
  const m1 = await machine(t, 'm1', { directProxy: 'flycast', flycastUrl: flycast.url, discovery: 'none' })
  const dispatcher = client(t)
  const body = randomBytes(MB + 1)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body, headers: pinnedTo('m2') })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { servedBy: 'm2' })
  t.equal(flycast.seen.length, 1)
  t.equal(flycast.seen[0].headers['fly-force-instance-id'], 'm2')
  t.equal(flycast.seen[0].headers['x-navigator-via'], 'm1')
  t.equal(flycast.seen[0].sha256, sha(body), 'byte-identical')
  t.same(m1.handled, [])
})

test('flycast: an unreachable Flycast address gets fallbackMode, not the asleep rule', async (t) => {
  const m1 = await machine(t, 'm1', { directProxy: 'flycast', flycastUrl: await closedPort(), peers: { m2: 'http://127.0.0.1:9' }, fallbackMode: 'route_to_available' })
  const dispatcher = client(t)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: randomBytes(MB + 1), headers: pinnedTo('m2') })
  t.equal(res.statusCode, 200)
  t.match(await res.body.json(), { servedBy: 'm1', sticky: { machine: 'm1', action: 'fallback' } })
})

test('a maintenance page answered as a stream ends the request: the app does not handle it too', async (t) => {
  const m1 = await machine(t, 'm1', {
    peers: { m2: await closedPort() },
    maintenance: (ctx) => { ctx.reply?.code(503).type('text/html').send(Readable.from(['<h1>', 'Back soon', '</h1>'])) }
  })
  const dispatcher = client(t)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: Readable.from([randomBytes(10)]), headers: pinnedTo('m2') })
  t.equal(res.statusCode, 503)
  t.equal(await res.body.text(), '<h1>Back soon</h1>')
  const failed = await request(`${m1.url}/app`, { dispatcher, headers: { ...pinnedTo('m2'), 'fly-replay-failed': 'instance=m2' } })
  t.equal(failed.statusCode, 503)
  await failed.body.text()
  t.same(m1.handled, [])
})

test('an unreachable Machine that discovery does not know, with route_to_available, is served here with the whole body, and re-pinned', async (t) => {
  const m1 = await machine(t, 'm1', { peers: { m2: await closedPort() }, discovery: { has: () => undefined }, fallbackMode: 'route_to_available' })
  const dispatcher = client(t)
  const body = randomBytes(3 * MiB)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body, headers: pinnedTo('m2') })
  const answer = await res.body.json() as Record<string, unknown>
  t.same(answer, { servedBy: 'm1', size: 3 * MiB, sha256: sha(body), sticky: { machine: 'm1', action: 'fallback' } })
  t.match(setCookies(res.headers)[0], /^_navigator_machine=m1;/)
})

test('without a peer address or app name the direct path falls back', async (t) => {
  const saved = process.env.FLY_APP_NAME
  delete process.env.FLY_APP_NAME
  t.teardown(() => { if (saved !== undefined) process.env.FLY_APP_NAME = saved })
  const m1 = await machine(t, 'm1', { discovery: 'none' })
  const dispatcher = client(t)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: Readable.from([randomBytes(10)]), headers: pinnedTo('m2') })
  t.equal(res.statusCode, 503)
  await res.body.text()
})

test('the direct routes: vm to <id>.vm.<app>.internal (or the peer), flycast to <app>.flycast on the listen port', async (t) => {
  const vm = createDirectRouter(resolveOptions({ appName: 'web', port: 8080, peers: { m3: 'http://10.0.0.3:9000' } }, {}), 'm1')
  t.same(vm('m2'), { origin: 'http://m2.vm.web.internal:8080', headers: { 'x-navigator-via': 'm1' } })
  t.same(vm('m3'), { origin: 'http://10.0.0.3:9000', headers: { 'x-navigator-via': 'm1' } })
  const flycast = createDirectRouter(resolveOptions({ appName: 'web', port: 8080, directProxy: 'flycast' }, {}), 'm1')
  t.same(flycast('m2'), { origin: 'http://web.flycast:8080', headers: { 'x-navigator-via': 'm1', 'fly-force-instance-id': 'm2' } })
  const port = createDirectRouter(resolveOptions({ appName: 'web', port: 8080, directProxy: 'flycast', flycastPort: 80 }, {}), 'm1')
  t.equal(port('m2')?.origin, 'http://web.flycast:80')
  const url = createDirectRouter(resolveOptions({ directProxy: 'flycast', flycastUrl: 'http://[fdaa::3]:3000/' }, {}), 'm1')
  t.equal(url('m2')?.origin, 'http://[fdaa::3]:3000', 'flycastUrl wins, and needs no app name')
  t.equal(createDirectRouter(resolveOptions({ directProxy: 'flycast' }, {}), 'm1')('m2'), null, 'no app name, no URL: no route (the fallback)')
})
