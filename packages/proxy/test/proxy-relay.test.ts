import { test, type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Agent, request } from 'undici'
import { createUpstreamProxy, type UpstreamProxy } from '../src/proxy.js'
import { contextOf } from '../src/request-context.js'

// The response side of the proxy writes the upstream's answer straight to the client (the reply is hijacked once
// the upstream's headers are in); these tests pin what that path must keep doing.

async function startUpstream (t: Test, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A Fastify app whose catch-all route relays (no promise) to origin, after a hook set some headers. */
async function startRelayApp (t: Test, origin: string, onResponse?: () => void): Promise<{ url: string, client: Agent, proxy: UpstreamProxy }> {
  const proxy = createUpstreamProxy()
  const client = new Agent()
  const app = Fastify()
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('set-cookie', 'sticky=m1; Path=/')
    reply.header('x-from-hook', 'hook')
    reply.header('x-both', 'hook')
    done()
  })
  if (onResponse !== undefined) app.addHook('onResponse', (request, reply, done) => { onResponse(); done() })
  app.all('/*', (request, reply) => { proxy.relay(contextOf(request, reply), { origin }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await client.close()
    await app.close()
    await proxy.close()
  })
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, client, proxy }
}

test('a relayed response keeps the hooks\' headers, the upstream winning on a shared name, and runs onResponse hooks', async (t) => {
  const origin = await startUpstream(t, (_req, res) => {
    res.setHeader('set-cookie', 'app=1; Path=/')
    res.setHeader('x-both', 'upstream')
    res.end('hi')
  })
  let responses = 0
  const { url, client } = await startRelayApp(t, origin, () => { responses++ })
  const res = await request(`${url}/page?q=1`, { dispatcher: client })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'hi')
  t.same(res.headers['set-cookie'], ['sticky=m1; Path=/', 'app=1; Path=/'])
  t.equal(res.headers['x-from-hook'], 'hook')
  t.equal(res.headers['x-both'], 'upstream')
  t.equal(responses, 1, 'the onResponse hook ran once')
})

test('a large chunked upstream response streams through byte-identical, to a client that reads slowly', async (t) => {
  const payload = randomBytes(8 * 1024 * 1024)
  const origin = await startUpstream(t, (_req, res) => {
    res.setHeader('content-type', 'application/octet-stream')
    // No content-length: chunked, written in pieces.
    let offset = 0
    const next = (): void => {
      while (offset < payload.length) {
        const piece = payload.subarray(offset, offset + 100_000)
        offset += piece.length
        if (!res.write(piece)) {
          res.once('drain', next)
          return
        }
      }
      res.end()
    }
    next()
  })
  const { url, client } = await startRelayApp(t, origin)
  const res = await request(`${url}/big`, { dispatcher: client, highWaterMark: 16 * 1024 })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['transfer-encoding'], 'chunked')
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of res.body) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
    if (size % (1024 * 1024) < 20_000) await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(size, payload.length)
  t.equal(hash.digest('hex'), createHash('sha256').update(payload).digest('hex'))
})

test('a response body that arrives in several pieces with a content-length is complete; HEAD and 204 carry no body', async (t) => {
  const origin = await startUpstream(t, (req, res) => {
    if (req.url === '/empty') {
      res.statusCode = 204
      res.end()
      return
    }
    res.setHeader('content-length', '10')
    res.write('hello')
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    setImmediate(() => { res.end('world') })
  })
  const { url, client } = await startRelayApp(t, origin)
  const res = await request(`${url}/pieces`, { dispatcher: client })
  t.equal(res.headers['content-length'], '10')
  t.equal(await res.body.text(), 'helloworld')
  const head = await request(`${url}/pieces`, { dispatcher: client, method: 'HEAD' })
  t.equal(head.headers['content-length'], '10')
  t.equal(await head.body.text(), '')
  const empty = await request(`${url}/empty`, { dispatcher: client })
  t.equal(empty.statusCode, 204)
  t.equal(await empty.body.text(), '')
})

test('relay answers 502 when the upstream cannot be reached', async (t) => {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  await new Promise((resolve) => server.close(resolve))
  const { url, client } = await startRelayApp(t, origin)
  const res = await request(`${url}/x`, { dispatcher: client })
  t.equal(res.statusCode, 502)
  t.equal((await res.body.json() as { code: string }).code, 'NAV_PROXY_UPSTREAM_UNREACHABLE')
})

test('relay lets onUnreachable answer, and a failing onUnreachable becomes an error answer', async (t) => {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  await new Promise((resolve) => server.close(resolve))
  const proxy = createUpstreamProxy()
  const client = new Agent()
  const app = Fastify()
  app.get('/fallback', (request, reply) => {
    proxy.relay(contextOf(request, reply), { origin }, { onUnreachable: () => reply.code(503).send('fallback') })
  })
  app.get('/broken', (request, reply) => {
    proxy.relay(contextOf(request, reply), { origin }, { onUnreachable: () => { throw new Error('fallback failed') } })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await client.close()
    await app.close()
    await proxy.close()
  })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const res = await request(`${url}/fallback`, { dispatcher: client })
  t.equal(res.statusCode, 503)
  t.equal(await res.body.text(), 'fallback')
  const broken = await request(`${url}/broken`, { dispatcher: client })
  t.equal(broken.statusCode, 500)
  await broken.body.text()
})

test('collectEveryBodyBytes: an upload relayed with collections every 64 KiB arrives intact; a bad value is refused', async (t) => {
  t.throws(() => createUpstreamProxy({ collectEveryBodyBytes: 0 }), { code: 'NAV_PROXY_INVALID_OPTION' })
  t.throws(() => createUpstreamProxy({ collectEveryBodyBytes: 1.5 }), { code: 'NAV_PROXY_INVALID_OPTION' })
  const origin = await startUpstream(t, (req, res) => {
    const hash = createHash('sha256')
    req.on('data', (chunk: Buffer) => { hash.update(chunk) })
    req.on('end', () => { res.end(hash.digest('hex')) })
  })
  const proxy = createUpstreamProxy({ collectEveryBodyBytes: 64 * 1024 })
  const client = new Agent()
  const app = Fastify()
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  app.post('/upload', (request, reply) => { proxy.relay(contextOf(request, reply), { origin }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await client.close()
    await app.close()
    await proxy.close()
  })
  const payload = randomBytes(4 * 1024 * 1024)
  const res = await request(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/upload`, {
    dispatcher: client, method: 'POST', body: payload, headers: { 'content-type': 'application/octet-stream' }
  })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), createHash('sha256').update(payload).digest('hex'))
})
