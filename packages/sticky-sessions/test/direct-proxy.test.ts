import { test, type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, request } from 'undici'
import { DEFAULT_COOKIE_NAME, stickySessions, type StickySessionsOptions } from '../src/index.js'
import { setCookies } from './helpers.js'

const MiB = 1024 * 1024

/** A Navigator-like Machine: sticky sessions plus a route that answers with the sha256 of the streamed body. */
interface Machine {
  app: FastifyInstance
  url: string
  /** Requests that reached this Machine's own route. */
  handled: string[]
  /** Their headers. */
  seen: Array<Record<string, unknown>>
}

async function machine (t: Test, machineId: string, options: StickySessionsOptions = {}): Promise<Machine> {
  const app = Fastify()
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
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, handled, seen }
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

test('a POST of 1,048,575 bytes for another Machine is replayed', async (t) => {
  const m2 = await machine(t, 'm2')
  const m1 = await machine(t, 'm1', { peers: { m2: m2.url } })
  const dispatcher = client(t)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: randomBytes(MiB - 1), headers: pinnedTo('m2') })
  t.equal(res.statusCode, 307)
  t.match(res.headers['fly-replay'], /^instance=m2;/)
  await res.body.text()
})

test('a POST of 1,048,576 bytes reaches the other Machine through the direct proxy, byte-identical', async (t) => {
  const m2 = await machine(t, 'm2')
  const m1 = await machine(t, 'm1', { peers: { m2: m2.url } })
  const dispatcher = client(t)
  const body = randomBytes(MiB)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body, headers: pinnedTo('m2') })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['fly-replay'], undefined)
  const answer = await res.body.json() as Record<string, unknown>
  t.same(answer, { servedBy: 'm2', size: MiB, sha256: sha(body), sticky: { machine: 'm2', action: 'serve' } })
  t.same(setCookies(res.headers).map((c) => c.split(';')[0]), [`${DEFAULT_COOKIE_NAME}=m2`], 'only the target re-sets the cookie')
  t.same(m1.handled, [], 'the proxying Machine does not also handle the request')
  t.equal(m2.seen[0]['x-navigator-sticky-proxied'], 'm1', 'the hop is marked')
})

test('a direct-proxied request that lands on the wrong Machine is not proxied again', async (t) => {
  const m3 = await machine(t, 'm3', { peers: { m2: 'http://127.0.0.1:9' } })
  const m1 = await machine(t, 'm1', { peers: { m2: m3.url } })
  const dispatcher = client(t)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: randomBytes(MiB), headers: pinnedTo('m2') })
  t.equal(res.statusCode, 503, 'the wrong Machine applies the fallback')
  await res.body.text()
  t.same(m3.handled, [])
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

test('an unreachable Machine on the direct path gets the maintenance fallback, cookie kept', async (t) => {
  const m1 = await machine(t, 'm1', { peers: { m2: await closedPort() } })
  const dispatcher = client(t)
  const res = await request(`${m1.url}/app/upload`, { dispatcher, method: 'POST', body: randomBytes(2 * MiB), headers: pinnedTo('m2') })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.equal(res.headers['set-cookie'], undefined)
  await res.body.text()
  t.same(m1.handled, [])
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

test('an unreachable Machine with route_to_available is served here with the whole body, and re-pinned', async (t) => {
  const m1 = await machine(t, 'm1', { peers: { m2: await closedPort() }, fallbackMode: 'route_to_available' })
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
