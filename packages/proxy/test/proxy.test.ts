import { test, type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, request } from 'undici'
import { createUpstreamProxy, type UpstreamProxy, type UpstreamProxyOptions } from '../src/proxy.js'
import { contextOf } from '../src/request-context.js'

type Tap = Test

interface Upstream {
  origin: string
  server: http.Server
  seen: http.IncomingMessage[]
}

async function startUpstream (t: Tap, handler: http.RequestListener): Promise<Upstream> {
  const seen: http.IncomingMessage[] = []
  const server = http.createServer((req, res) => {
    seen.push(req)
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { origin: `http://127.0.0.1:${port}`, server, seen }
}

// Answers with the sha256 and size of the request body, plus what the upstream saw of the framing.
const hashingUpstream: http.RequestListener = (req, res) => {
  const hash = createHash('sha256')
  let size = 0
  req.on('data', (chunk: Buffer) => { size += chunk.length; hash.update(chunk) })
  req.on('end', () => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({
      sha256: hash.digest('hex'),
      size,
      contentLength: req.headers['content-length'] ?? null,
      transferEncoding: req.headers['transfer-encoding'] ?? null,
      url: req.url
    }))
  })
}

async function startProxyApp (
  t: Tap,
  origin: string,
  proxyOptions?: UpstreamProxyOptions,
  setup?: (app: FastifyInstance, proxy: UpstreamProxy) => void
): Promise<{ app: FastifyInstance, url: string, proxy: UpstreamProxy, client: Agent }> {
  const proxy = createUpstreamProxy(proxyOptions)
  const client = new Agent()
  const app = Fastify()
  if (setup !== undefined) setup(app, proxy)
  else {
    app.addHook('onRequest', async (request, reply) => {
      await proxy.forward(contextOf(request, reply), { origin })
      return reply
    })
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    // The client goes first: a connection still uploading when the server closes would keep it open.
    await client.close()
    await app.close()
    await proxy.close()
  })
  const { port } = app.server.address() as AddressInfo
  return { app, url: `http://127.0.0.1:${port}`, proxy, client }
}

test('a 5 MiB POST forwarded from an onRequest hook arrives byte-identical with its content-length', async (t) => {
  const upstream = await startUpstream(t, hashingUpstream)
  const { url, client } = await startProxyApp(t, upstream.origin)
  const payload = randomBytes(5 * 1024 * 1024)
  const res = await request(`${url}/upload?x=1`, { dispatcher: client, method: 'POST', body: payload })
  t.equal(res.statusCode, 200)
  const seen = await res.body.json() as Record<string, unknown>
  t.equal(seen.sha256, createHash('sha256').update(payload).digest('hex'))
  t.equal(seen.size, payload.length)
  t.equal(seen.contentLength, String(payload.length))
  t.equal(seen.url, '/upload?x=1')
})

test('a chunked request body stays chunked and arrives complete', async (t) => {
  const upstream = await startUpstream(t, hashingUpstream)
  const { url, client } = await startProxyApp(t, upstream.origin)
  const chunks = Array.from({ length: 40 }, () => randomBytes(64 * 1024))
  const expected = createHash('sha256')
  for (const chunk of chunks) expected.update(chunk)
  const res = await request(`${url}/stream`, { dispatcher: client, method: 'PUT', body: Readable.from(chunks) })
  const seen = await res.body.json() as Record<string, unknown>
  t.equal(seen.sha256, expected.digest('hex'))
  t.equal(seen.transferEncoding, 'chunked')
  t.equal(seen.contentLength, null)
})

test('a route with a pass-through content-type parser can forward the body stream', async (t) => {
  const upstream = await startUpstream(t, hashingUpstream)
  const { url, client } = await startProxyApp(t, upstream.origin, undefined, (app, proxy) => {
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
    app.post('/tenant/*', async (request, reply) => {
      await proxy.forward(contextOf(request, reply), { origin: upstream.origin, path: '/rewritten' })
      return reply
    })
  })
  const payload = randomBytes(300_000)
  const res = await request(`${url}/tenant/form`, {
    dispatcher: client,
    method: 'POST',
    body: payload,
    headers: { 'content-type': 'application/json' }
  })
  const seen = await res.body.json() as Record<string, unknown>
  t.equal(seen.sha256, createHash('sha256').update(payload).digest('hex'))
  t.equal(seen.url, '/rewritten')
})

test('upstream set-cookie headers stay separate and keep a cookie set by an earlier hook', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => {
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2, with comma; Path=/'])
    res.setHeader('connection', 'keep-alive, x-private')
    res.setHeader('x-private', 'hop')
    res.setHeader('x-app', 'yes')
    res.end('hello')
  })
  const { url, client } = await startProxyApp(t, upstream.origin, undefined, (app, proxy) => {
    app.addHook('onRequest', async (request, reply) => {
      reply.header('set-cookie', 'sticky=m1; Path=/')
      await proxy.forward(contextOf(request, reply), { origin: upstream.origin })
      return reply
    })
  })
  const res = await request(`${url}/`, { dispatcher: client })
  t.equal(await res.body.text(), 'hello')
  t.same(res.headers['set-cookie'], ['sticky=m1; Path=/', 'a=1; Path=/', 'b=2, with comma; Path=/'])
  t.equal(res.headers['x-app'], 'yes')
  t.equal(res.headers['x-private'], undefined, 'headers named by Connection are hop-by-hop')
})

test('with trustForwarded, forwarded requests carry X-Forwarded-For/-Proto/-Host (keeping an edge\'s values) and an X-Request-Id, without hop-by-hop headers', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => { res.end('ok') })
  const { url, client } = await startProxyApp(t, upstream.origin, { trustForwarded: true })
  const res = await request(`${url}/h`, {
    dispatcher: client,
    headers: {
      host: 'tenant.example.com',
      'x-forwarded-for': '203.0.113.9',
      'proxy-authorization': 'secret',
      te: 'trailers'
    }
  })
  await res.body.text()
  const seen = upstream.seen[0].headers
  t.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
  t.equal(seen['x-forwarded-proto'], 'http')
  t.equal(seen['x-forwarded-host'], 'tenant.example.com')
  t.equal(seen.host, 'tenant.example.com', 'the original Host is kept')
  t.match(seen['x-request-id'], /^[0-9a-f-]{36}$/)
  t.equal(seen['proxy-authorization'], undefined)
  t.equal(seen.te, undefined)

  const again = await request(`${url}/h`, { dispatcher: client, headers: { 'x-request-id': 'given-id' } })
  await again.body.text()
  t.equal(upstream.seen[1].headers['x-request-id'], 'given-id', 'an existing request id is kept')
  t.equal(upstream.seen[1].headers['x-forwarded-for'], '127.0.0.1')

  const behindEdge = await request(`${url}/h`, {
    dispatcher: client,
    headers: { host: 'internal:3000', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'tenant.example.com' }
  })
  await behindEdge.body.text()
  t.equal(upstream.seen[2].headers['x-forwarded-proto'], 'https', 'the edge\'s scheme passes through')
  t.equal(upstream.seen[2].headers['x-forwarded-host'], 'tenant.example.com', 'the edge\'s host passes through')
})

test('by default a client\'s X-Forwarded-For/-Proto/-Host are replaced with what this connection shows', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => { res.end('ok') })
  const { url, client } = await startProxyApp(t, upstream.origin)
  const res = await request(`${url}/h`, {
    dispatcher: client,
    headers: {
      host: 'tenant.example.com',
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example'
    }
  })
  await res.body.text()
  const seen = upstream.seen[0].headers
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'the sent chain is dropped, the socket address is used')
  t.equal(seen['x-forwarded-proto'], 'http', 'the scheme is this connection\'s')
  t.equal(seen['x-forwarded-host'], 'tenant.example.com', 'the host is the request\'s Host')
})

async function closedPortOrigin (): Promise<string> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}`
}

test('an unreachable upstream answers 502 promptly', async (t) => {
  const origin = await closedPortOrigin()
  const { url, client } = await startProxyApp(t, origin)
  const started = Date.now()
  const res = await request(`${url}/x`, { dispatcher: client, method: 'POST', body: 'small' })
  const body = await res.body.json() as Record<string, unknown>
  t.equal(res.statusCode, 502)
  t.equal(body.code, 'NAV_PROXY_UPSTREAM_UNREACHABLE')
  t.notMatch(JSON.stringify(body), origin, 'the internal address is not shown to clients')
  t.ok(Date.now() - started < 2000, 'answered promptly')
})

test('onUnreachable lets the caller answer when no body byte was sent', async (t) => {
  const origin = await closedPortOrigin()
  const { url, client } = await startProxyApp(t, origin, undefined, (app, proxy) => {
    app.addHook('onRequest', async (request, reply) => {
      await proxy.forward(contextOf(request, reply), { origin }, {
        onUnreachable: (err) => reply.code(503).send(`fallback: ${(err as { code?: string }).code}`)
      })
      return reply
    })
  })
  const res = await request(`${url}/x`, { dispatcher: client, method: 'POST', body: randomBytes(2 * 1024 * 1024) })
  t.equal(res.statusCode, 503)
  t.equal(await res.body.text(), 'fallback: ECONNREFUSED')
})

test('an upstream that never answers gets 504 after the headers timeout', async (t) => {
  const upstream = await startUpstream(t, () => { /* never answers */ })
  const { url, client } = await startProxyApp(t, upstream.origin, { headersTimeoutMs: 200 })
  const res = await request(`${url}/slow`, { dispatcher: client })
  const body = await res.body.json() as Record<string, unknown>
  t.equal(res.statusCode, 504)
  t.equal(body.code, 'NAV_PROXY_UPSTREAM_TIMEOUT')
})

test('an upstream that stalls in the middle of its body is cut after the body timeout, and its connection closed', async (t) => {
  let upstreamClosed!: () => void
  const closedUpstream = new Promise<void>((resolve) => { upstreamClosed = resolve })
  const upstream = await startUpstream(t, (req, res) => {
    res.on('close', () => upstreamClosed())
    res.writeHead(200, { 'content-length': '1000' })
    res.write(Buffer.alloc(100, 97))
  })
  const { url, client } = await startProxyApp(t, upstream.origin, { bodyTimeoutMs: 200 })
  const started = Date.now()
  const res = await request(`${url}/stall`, { dispatcher: client })
  t.equal(res.statusCode, 200, 'the headers were relayed')
  await t.rejects(res.body.arrayBuffer(), 'the client sees an incomplete response, not a hang')
  const ms = Date.now() - started
  t.ok(ms >= 150 && ms < 2000, `cut after ${ms} ms (timeout 200 ms)`)
  await closedUpstream
  t.pass('the upstream connection was closed')
})

test('an upload that takes longer than the headers timeout is not cut: the timeout runs once the body is sent', async (t) => {
  const upstream = await startUpstream(t, hashingUpstream)
  const { url, client } = await startProxyApp(t, upstream.origin, { headersTimeoutMs: 300 })
  const chunks = Array.from({ length: 10 }, () => randomBytes(1024))
  const res = await request(`${url}/upload`, {
    dispatcher: client,
    method: 'POST',
    // About a second of trickled body, three headers timeouts.
    body: Readable.from((async function * () {
      for (const chunk of chunks) {
        yield chunk
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })())
  })
  t.equal(res.statusCode, 200)
  const seen = await res.body.json() as { size: number, sha256: string }
  t.equal(seen.size, 10 * 1024, 'the whole body arrived')
  t.equal(seen.sha256, createHash('sha256').update(Buffer.concat(chunks)).digest('hex'))
})

test('a client that left before its request was forwarded: nothing is proxied, and close() does not wait for it', async (t) => {
  let upstreamRequests = 0
  const upstream = await startUpstream(t, (req, res) => {
    upstreamRequests++
    // A streamed answer that would keep an exchange paused on a client that is gone.
    res.writeHead(200)
    const timer = setInterval(() => { res.write(Buffer.alloc(64 * 1024)) }, 20)
    res.on('close', () => { clearInterval(timer) })
  })
  let forwarded!: () => void
  const done = new Promise<void>((resolve) => { forwarded = resolve })
  let arrived!: () => void
  const seen = new Promise<void>((resolve) => { arrived = resolve })
  const { url, proxy } = await startProxyApp(t, upstream.origin, {}, (app, proxy) => {
    app.get('/late', async (request, reply) => {
      arrived()
      // Like a tenant that is still starting: the client gives up meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      await proxy.forward(contextOf(request, reply), { origin: upstream.origin })
      forwarded()
      return reply
    })
  })
  const { port } = new URL(url)
  const req = http.get({ host: '127.0.0.1', port, path: '/late', agent: false })
  req.on('error', () => {})
  // Only once the request is in the handler: destroyed before it got there, it would never reach forward().
  await seen
  req.destroy()
  await done
  t.equal(upstreamRequests, 0, 'the upstream was not asked')
  const closing = proxy.close()
  const outcome = await Promise.race([closing.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3000))])
  t.equal(outcome, 'closed', 'close() returned')
})

test('a client slow to read is not cut by the body timeout: the upstream waits while it is paused', async (t) => {
  const size = 8 * 1024 * 1024
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-length': String(size) })
    res.end(Buffer.alloc(size, 98))
  })
  const { url } = await startProxyApp(t, upstream.origin, { bodyTimeoutMs: 200 })
  const { port } = new URL(url)
  const received = await new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/big', agent: false }, (res) => {
      let bytes = 0
      res.pause()
      // Nothing is read for five body timeouts: the proxy's buffers fill and it pauses the upstream.
      setTimeout(() => {
        res.on('data', (chunk: Buffer) => { bytes += chunk.length })
        res.on('end', () => { resolve(bytes) })
        res.on('error', reject)
        res.resume()
      }, 1000)
    }).on('error', reject)
  })
  t.equal(received, size, 'every byte arrived')
})

test('a client that goes away aborts the upstream request and leaks nothing', async (t) => {
  let upstreamClosed!: () => void
  const closedUpstream = new Promise<void>((resolve) => { upstreamClosed = resolve })
  let requestArrived!: () => void
  const arrived = new Promise<void>((resolve) => { requestArrived = resolve })
  const upstream = await startUpstream(t, (req, res) => {
    res.on('close', () => upstreamClosed())
    requestArrived()
    req.resume()
  })
  const { url, proxy, client } = await startProxyApp(t, upstream.origin)
  const abort = new AbortController()
  const pending = request(`${url}/hang`, {
    dispatcher: client,
    method: 'POST',
    body: Readable.from((async function * () {
      yield Buffer.alloc(1024)
      await arrived
      abort.abort()
    })()),
    signal: abort.signal
  })
  await t.rejects(pending)
  await closedUpstream
  t.pass('the upstream connection was closed when the client went away')
  await proxy.close()
  t.pass('the proxy closes without waiting for the abandoned request')
})

test('extra headers given to forward replace the request\'s own', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => { res.end('ok') })
  const { url, client } = await startProxyApp(t, upstream.origin, undefined, (app, proxy) => {
    app.addHook('onRequest', async (request, reply) => {
      await proxy.forward(contextOf(request, reply), { origin: upstream.origin }, { headers: { 'X-Hop': 'm1' } })
      return reply
    })
  })
  const res = await request(`${url}/`, { dispatcher: client, headers: { 'x-hop': 'client' } })
  await res.body.text()
  t.equal(upstream.seen[0].headers['x-hop'], 'm1')
})

test('an upstream that answers before reading the body leaves no connection hanging', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => {
    res.statusCode = 413
    res.end('too large')
  })
  const proxy = createUpstreamProxy()
  const app = Fastify()
  app.addHook('onRequest', async (request, reply) => {
    await proxy.forward(contextOf(request, reply), { origin: upstream.origin })
    return reply
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Agent()
  const res = await request(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/upload`, {
    dispatcher: client,
    method: 'POST',
    body: randomBytes(8 * 1024 * 1024)
  })
  t.equal(res.statusCode, 413)
  t.equal(await res.body.text(), 'too large')
  await client.close()
  let bound: NodeJS.Timeout | undefined
  const closed = await Promise.race([
    (async () => { await app.close(); await proxy.close(); return 'closed' })(),
    new Promise((resolve) => { bound = setTimeout(resolve, 10_000, 'still open') })
  ])
  clearTimeout(bound)
  t.equal(closed, 'closed', 'the server and the proxy close without waiting for a server timeout')
})

/**
 * A hung host: a listener with a listen queue of 1 in a stopped child process, the queue filled by `held`
 * connections, so the kernel drops new SYNs and a connect stays pending.
 */
async function hungHostOrigin (t: Tap): Promise<string> {
  const { spawn } = await import('node:child_process')
  const { once } = await import('node:events')
  const { connect } = await import('node:net')
  const source = "const s = require('node:net').createServer(() => {}); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => { console.log(s.address().port) })"
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] })
  const held: Array<import('node:net').Socket> = []
  t.teardown(() => {
    for (const socket of held) socket.destroy()
    child.kill('SIGCONT')
    child.kill('SIGKILL')
  })
  const [data] = await once(child.stdout!, 'data') as [Buffer]
  const port = Number(data.toString().trim())
  child.kill('SIGSTOP')
  for (let i = 0; i < 4; i++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    held.push(socket)
  }
  return `http://127.0.0.1:${port}`
}

test('writeProgressTimeoutMs: a connect that never completes gets onUnreachable after that time, body unread', async (t) => {
  const origin = await hungHostOrigin(t)
  // The connect timeout is the alternative ruled out: far enough above the bounds below for a loaded machine.
  const { url, client } = await startProxyApp(t, origin, { connectTimeoutMs: 10_000 }, (app, proxy) => {
    app.addHook('onRequest', async (request, reply) => {
      await proxy.forward(contextOf(request, reply), { origin }, {
        writeProgressTimeoutMs: 300,
        onUnreachable: async (err) => {
          // The body was never handed to the upstream: the fallback reads all of it.
          let size = 0
          for await (const chunk of request.raw) size += (chunk as Buffer).length
          return await reply.code(503).send(`fallback: ${(err as { code?: string }).code} ${size}`)
        }
      })
      return reply
    })
  })
  const started = Date.now()
  const res = await request(`${url}/x`, { dispatcher: client, method: 'POST', body: randomBytes(2 * 1024 * 1024) })
  const ms = Date.now() - started
  t.equal(res.statusCode, 503)
  t.equal(await res.body.text(), `fallback: NAV_PROXY_CONNECT_STALLED ${2 * 1024 * 1024}`)
  t.ok(ms >= 250 && ms < 5_000, `after the write timeout (300 ms), well before the connect timeout: ${ms} ms`)
})

test('writeProgressTimeoutMs without onUnreachable: a connect that never completes gets 504 after that time', async (t) => {
  const origin = await hungHostOrigin(t)
  // The connect timeout is the alternative ruled out: far enough above the bounds below for a loaded machine.
  const { url, client } = await startProxyApp(t, origin, { connectTimeoutMs: 10_000 }, (app, proxy) => {
    app.addHook('onRequest', async (request, reply) => {
      await proxy.forward(contextOf(request, reply), { origin }, { writeProgressTimeoutMs: 300 })
      return reply
    })
  })
  const started = Date.now()
  const res = await request(`${url}/x`, { dispatcher: client })
  const body = await res.body.json() as Record<string, unknown>
  t.equal(res.statusCode, 504)
  t.equal(body.code, 'NAV_PROXY_UPSTREAM_TIMEOUT')
  t.ok(Date.now() - started < 5_000, `promptly, well before the connect timeout: ${Date.now() - started} ms`)
})
