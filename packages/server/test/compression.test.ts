import { test } from 'tap'
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { brotliDecompressSync, createBrotliDecompress, createGunzip, gunzipSync, gzipSync } from 'node:zlib'
import pino from 'pino'
import WebSocket from 'ws'
import { parseConfig } from '@navigator/config'
import { buildServer } from '../src/server.js'
import { http, reservePort, startNavigator, tempDir, tenantStartPort, writeConfig } from './helpers.js'
import type { Running } from './helpers.js'
import { COOKIE, startMachines } from './fly-fidelity-helpers.js'

// Compression of proxied responses (server.disable_compression) through the real navigator: a tenant, a standalone
// server and a reverse proxy target all run the app below, which answers each type and size the rules look at; the
// direct proxy between two Machines; and both runners of the step list (the raw path and Fastify).

type Teardown = Parameters<Parameters<typeof test>[1]>[0]

/** The app's text of `size` bytes: lines that differ, so that it compresses as real HTML does, not to nothing. */
function page (size: number): Buffer {
  let text = ''
  for (let line = 0; text.length < size; line++) text += `<p id="l${line}">line ${line}: ${(line * 7919).toString(36)} the quick brown fox</p>\n`
  return Buffer.from(text.slice(0, size))
}

const APP = `
import { createServer } from 'node:http'
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'

${page.toString()}

let release = null
export function handler (req, res) {
  req.resume()
  const name = new URL(req.url, 'http://localhost').pathname.split('/').pop()
  const send = (headers, body) => { res.writeHead(200, { 'content-length': String(body.length), ...headers }); res.end(body) }
  switch (name) {
    case 'html': return send({ 'content-type': 'text/html; charset=utf-8' }, page(20_000))
    case 'json': return send({ 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ lines: page(8_000).toString().split('\\n') })))
    case 'svg': return send({ 'content-type': 'image/svg+xml' }, page(4_000))
    case 'png': return send({ 'content-type': 'image/png' }, page(4_000))
    case 'untyped': return send({}, page(4_000))
    case 'small': return send({ 'content-type': 'text/html' }, page(1_023))
    case 'threshold': return send({ 'content-type': 'text/html' }, page(1_024))
    case 'encoded': return send({ 'content-type': 'text/html', 'content-encoding': 'gzip' }, gzipSync(page(4_000)))
    case 'no-transform': return send({ 'content-type': 'text/html', 'cache-control': 'public, no-transform' }, page(4_000))
    case 'vary': return send({ 'content-type': 'text/html', vary: 'Origin' }, page(4_000))
    case 'etag': return send({ 'content-type': 'text/html', etag: '"v1"', 'accept-ranges': 'bytes' }, page(4_000))
    case 'weak-etag': return send({ 'content-type': 'text/html', etag: 'W/"v1"' }, page(4_000))
    case 'vary-done': return send({ 'content-type': 'text/html', vary: 'accept-encoding' }, page(4_000))
    case 'range': {
      const whole = page(4_000)
      res.writeHead(206, { 'content-type': 'text/html', 'content-range': 'bytes 0-1999/4000', 'content-length': '2000' })
      return res.end(whole.subarray(0, 2000))
    }
    case 'events':
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.write('data: ' + 'first '.repeat(300) + '\\n\\n')
      release = () => { res.end('data: last\\n\\n') }
      return
    case 'stream':
      // Chunked HTML in two parts, the second only once the test asks for it: a slow streamed page.
      res.writeHead(200, { 'content-type': 'text/html' })
      res.write(page(3_000))
      release = () => { res.end(page(6_000).subarray(3_000)) }
      return
    case 'release':
      release?.()
      release = null
      return send({ 'content-type': 'text/plain' }, Buffer.from('released\\n'))
    case 'no-content':
      res.writeHead(204, { 'content-type': 'text/html' })
      return res.end()
    default: return send({ 'content-type': 'text/plain' }, Buffer.from('unknown\\n'))
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const server = createServer(handler)
  // A WebSocket handshake answered by hand, and one text frame: enough to show an upgrade is never touched.
  server.on('upgrade', (req, socket) => {
    const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n')
    const text = Buffer.from('hello ' + 'x'.repeat(100))
    socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]))
    socket.on('data', () => {})
    socket.on('error', () => {})
  })
  server.listen(Number(process.env.PORT ?? process.argv[2]), '127.0.0.1')
  process.on('SIGTERM', () => { process.exit(0) })
}
`

interface Site { nav: Running, dir: string }

/** The app as a tenant (/t/), a standalone server (/s/) and a reverse proxy target in this process (/rp/). */
async function startCompressionSite (t: Teardown, serverLines: string[] = []): Promise<Site> {
  const dir = tempDir({ 'app.mjs': APP })
  const appFile = join(dir, 'app.mjs')
  const { handler } = await import(pathToFileURL(appFile).href) as { handler: (req: IncomingMessage, res: ServerResponse) => void }
  const target = createServer(handler)
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    target.closeAllConnections()
    await new Promise((resolve) => target.close(resolve))
  })
  const targetPort = (target.address() as { port: number }).port
  const standalone = await reservePort()
  await standalone.release()
  writeConfig(dir, [
    'server:',
    '  listen: "127.0.0.1:0"',
    ...serverLines,
    'routes:',
    '  reverse_proxies:',
    '    - prefix: /rp/',
    `      target: http://127.0.0.1:${targetPort}`,
    'applications:',
    '  command: node',
    `  args: [${JSON.stringify(appFile)}]`,
    `  start_port: ${tenantStartPort()}`,
    '  tenants:',
    '    - name: t',
    '      path: /t/',
    '  standalone_servers:',
    '    - name: s',
    '      match_path: /s/*',
    '      command: node',
    `      args: ${JSON.stringify([appFile, String(standalone.port)])}`,
    `      port: ${standalone.port}`,
    ''
  ].join('\n'))
  const nav = await startNavigator(t, dir)
  await nav.waitForLog((line) => line.msg === 'standalone server ready')
  return { nav, dir }
}

function decoded (encoding: string | undefined, body: Buffer): Buffer {
  if (encoding === 'br') return brotliDecompressSync(body)
  if (encoding === 'gzip') return gunzipSync(body)
  return body
}

test('proxied text responses are compressed by Accept-Encoding, on every kind of upstream', async (t) => {
  const { nav } = await startCompressionSite(t)
  const html = page(20_000)

  for (const prefix of ['/t/', '/s/', '/rp/']) {
    for (const [accept, expected] of [['gzip', 'gzip'], ['br', 'br'], ['gzip, deflate, br', 'br'], ['gzip;q=0, br', 'br'], ['br;q=0, gzip', 'gzip'], ['br;q=0.5, gzip;q=0.8', 'gzip'], ['BR', 'br'], ['*', 'br'], ['br;q=0, *', 'gzip']] as const) {
      const res = await http(nav.address, `${prefix}html`, { headers: { 'accept-encoding': accept } })
      t.equal(res.status, 200)
      t.equal(res.headers['content-encoding'], expected, `${prefix} ${accept}: ${expected}`)
      t.equal(res.headers['content-length'], undefined, 'no Content-Length on a compressed body')
      t.equal(res.headers.vary, 'Accept-Encoding')
      t.ok(res.body.length < html.length / 2, `${prefix} ${accept}: ${res.body.length} bytes for ${html.length}`)
      t.ok(decoded(res.headers['content-encoding'], res.body).equals(html), `${prefix} ${accept}: the same bytes once decompressed`)
    }
    for (const accept of ['identity', 'br;q=0, gzip;q=0', 'deflate', '*;q=0', 'gzip;q=0, br;q=0, identity']) {
      const res = await http(nav.address, `${prefix}html`, { headers: { 'accept-encoding': accept } })
      t.equal(res.headers['content-encoding'], undefined, `${prefix} ${accept}: not compressed`)
      t.equal(res.headers['content-length'], String(html.length))
      t.equal(res.headers.vary, 'Accept-Encoding', 'a response that could have been compressed varies by Accept-Encoding')
      t.ok(res.body.equals(html))
    }
    const none = await http(nav.address, `${prefix}html`)
    t.equal(none.headers['content-encoding'], undefined, `${prefix} without Accept-Encoding: not compressed`)
    t.equal(none.headers['content-length'], String(html.length))
    t.ok(none.body.equals(html))
  }
})

test('JSON and SVG are compressed; images, untyped and small bodies are not', async (t) => {
  const { nav } = await startCompressionSite(t)
  const headers = { 'accept-encoding': 'gzip, br' }
  for (const path of ['/t/json', '/t/svg', '/t/threshold']) {
    const plain = await http(nav.address, path)
    const res = await http(nav.address, path, { headers })
    t.equal(res.headers['content-encoding'], 'br', `${path} compressed`)
    t.ok(decoded('br', res.body).equals(plain.body), `${path}: the same bytes once decompressed`)
  }
  for (const [path, size] of [['/t/png', 4_000], ['/t/untyped', 4_000], ['/t/small', 1_023]] as const) {
    const res = await http(nav.address, path, { headers })
    t.equal(res.headers['content-encoding'], undefined, `${path} not compressed`)
    t.equal(res.headers['content-length'], String(size))
    t.equal(res.headers.vary, undefined, `${path}: no Vary, as no Accept-Encoding could change it`)
    t.ok(res.body.equals(page(size)))
  }
})

test('an encoded, no-transform, partial or empty response, a HEAD and an event stream pass unchanged', async (t) => {
  const { nav } = await startCompressionSite(t)
  const headers = { 'accept-encoding': 'gzip, br' }

  const encoded = await http(nav.address, '/t/encoded', { headers })
  t.equal(encoded.headers['content-encoding'], 'gzip', 'the app\'s own encoding is kept')
  t.ok(encoded.body.equals(gzipSync(page(4_000))), 'and its bytes, not encoded twice')

  const noTransform = await http(nav.address, '/t/no-transform', { headers })
  t.equal(noTransform.headers['content-encoding'], undefined, 'Cache-Control: no-transform is respected')
  t.ok(noTransform.body.equals(page(4_000)))

  const range = await http(nav.address, '/t/range', { headers: { ...headers, range: 'bytes=0-1999' } })
  t.equal(range.status, 206)
  t.equal(range.headers['content-encoding'], undefined, 'a 206 is not compressed')
  t.equal(range.headers['content-range'], 'bytes 0-1999/4000')
  t.ok(range.body.equals(page(4_000).subarray(0, 2000)))

  const empty = await http(nav.address, '/t/no-content', { headers })
  t.equal(empty.status, 204)
  t.equal(empty.headers['content-encoding'], undefined)
  t.equal(empty.body.length, 0)

  for (const prefix of ['/t/', '/rp/']) {
    const head = await http(nav.address, `${prefix}html`, { method: 'HEAD', headers })
    t.equal(head.status, 200)
    t.equal(head.headers['content-encoding'], undefined, `${prefix} HEAD: not compressed`)
    t.equal(head.headers['content-length'], '20000', `${prefix} HEAD: the length of the body a GET gets uncompressed`)
    t.equal(head.body.length, 0)
  }

  // The event stream's first event arrives, uncompressed, while the stream is still open.
  const { response, first } = await within(firstChunk(nav.address, '/t/events', headers), 'first event')
  t.equal(response.headers['content-encoding'], undefined, 'an event stream is not compressed')
  t.match(first.toString(), /^data: first /)
  const remaining = rest(response)
  await http(nav.address, '/t/release')
  t.match((await within(remaining, 'end of the event stream')).toString(), /data: last/)
})

test('a streamed page is compressed as it comes, not held until its end', async (t) => {
  const { nav } = await startCompressionSite(t)
  for (const [encoding, decoder] of [['gzip', createGunzip], ['br', createBrotliDecompress]] as const) {
    const { response, first } = await within(firstChunk(nav.address, '/t/stream', { 'accept-encoding': encoding }), `${encoding}: first chunk`)
    t.equal(response.headers['content-encoding'], encoding)
    t.equal(response.headers['transfer-encoding'], 'chunked')
    // What has come so far decompresses to the page's first part, while the app still holds the rest.
    const decompress = decoder()
    const out: Buffer[] = []
    const firstPart = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${encoding}: the first part did not arrive before the end`)) }, 10_000)
      decompress.on('data', (chunk: Buffer) => {
        out.push(chunk)
        if (Buffer.concat(out).length >= 3_000) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    const whole = new Promise<void>((resolve) => { decompress.on('end', resolve) })
    decompress.write(first)
    response.on('data', (chunk: Buffer) => decompress.write(chunk))
    response.on('end', () => { decompress.end() })
    response.resume()
    await firstPart
    t.ok(Buffer.concat(out).equals(page(3_000)), `${encoding}: the first 3000 bytes arrived before the app ended the page`)
    await http(nav.address, '/t/release')
    await within(whole, `${encoding}: the end of the page`)
    t.ok(Buffer.concat(out).equals(page(6_000)), `${encoding}: the whole page`)
  }
})

test('Vary: Accept-Encoding is merged into the app\'s Vary', async (t) => {
  const { nav } = await startCompressionSite(t)
  const merged = await http(nav.address, '/t/vary', { headers: { 'accept-encoding': 'gzip' } })
  t.equal(merged.headers['content-encoding'], 'gzip')
  t.equal(merged.headers.vary, 'Origin, Accept-Encoding')
  const already = await http(nav.address, '/t/vary-done', { headers: { 'accept-encoding': 'gzip' } })
  t.equal(already.headers['content-encoding'], 'gzip')
  t.equal(already.headers.vary, 'accept-encoding', 'not named twice')
})

test('a compressed response has a weak ETag and no Accept-Ranges; an uncompressed one keeps them', async (t) => {
  const { nav } = await startCompressionSite(t)
  const compressed = await http(nav.address, '/t/etag', { headers: { 'accept-encoding': 'br' } })
  t.equal(compressed.headers['content-encoding'], 'br')
  t.equal(compressed.headers.etag, 'W/"v1"', 'the compressed bytes are not those the strong ETag named')
  t.equal(compressed.headers['accept-ranges'], undefined, 'a range would be of the uncompressed body')
  t.ok(decoded('br', compressed.body).equals(page(4_000)))
  const plain = await http(nav.address, '/t/etag')
  t.equal(plain.headers.etag, '"v1"')
  t.equal(plain.headers['accept-ranges'], 'bytes')
  const weak = await http(nav.address, '/t/weak-etag', { headers: { 'accept-encoding': 'gzip' } })
  t.equal(weak.headers['content-encoding'], 'gzip')
  t.equal(weak.headers.etag, 'W/"v1"', 'a weak ETag stays as it is')
})

test('a WebSocket upgrade with Accept-Encoding is relayed untouched', async (t) => {
  const { nav } = await startCompressionSite(t)
  const ws = new WebSocket(nav.address.replace(/^http/, 'ws') + '/t/cable', { headers: { 'accept-encoding': 'gzip, br' }, perMessageDeflate: false })
  t.teardown(() => { ws.terminate() })
  const [upgrade, message] = await within(Promise.all([
    new Promise<IncomingMessage>((resolve, reject) => { ws.once('upgrade', resolve); ws.once('error', reject) }),
    new Promise<string>((resolve) => { ws.once('message', (data: Buffer) => { resolve(data.toString()) }) })
  ]), 'WebSocket handshake and message')
  t.equal(upgrade.statusCode, 101)
  t.equal(upgrade.headers['content-encoding'], undefined)
  t.equal(message, 'hello ' + 'x'.repeat(100))
})

test('server.disable_compression: true sends every response as the app wrote it', async (t) => {
  const { nav } = await startCompressionSite(t, ['  disable_compression: true'])
  for (const path of ['/t/html', '/s/html', '/rp/html', '/t/json']) {
    const plain = await http(nav.address, path)
    const res = await http(nav.address, path, { headers: { 'accept-encoding': 'gzip, deflate, br' } })
    t.equal(res.headers['content-encoding'], undefined, `${path}: not compressed`)
    t.equal(res.headers.vary, undefined, `${path}: no Vary added`)
    t.equal(res.headers['content-length'], plain.headers['content-length'])
    t.ok(res.body.equals(plain.body))
  }
})

test('a reload that sets disable_compression stops compressing at once', async (t) => {
  const { nav, dir } = await startCompressionSite(t)
  const headers = { 'accept-encoding': 'gzip, br' }
  t.equal((await http(nav.address, '/t/html', { headers })).headers['content-encoding'], 'br', 'compressed before')
  const yaml = readFileSync(join(dir, 'navigator.yml'), 'utf8')
  writeConfig(dir, yaml.replace('  listen: "127.0.0.1:0"\n', '  listen: "127.0.0.1:0"\n  disable_compression: true\n'))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')
  for (const path of ['/t/html', '/s/html', '/rp/html']) {
    const res = await http(nav.address, path, { headers })
    t.equal(res.headers['content-encoding'], undefined, `${path}: not compressed after the reload`)
    t.ok(res.body.equals(page(20_000)))
  }
})

test('the direct proxy to another Machine passes on what that Machine compressed, never compressing twice', async (t) => {
  const { m1 } = await startMachines(t, ['m1', 'm2'])
  // The Machines' app answers JSON naming the Machine and echoing the URL: past the threshold with a long query. A
  // chunked body cannot be replayed, so m1 proxies the request to m2 itself.
  const path = `/app/page?pad=${'x'.repeat(2_000)}`
  const post = { method: 'POST', body: 'a body of unknown length' }
  for (const encoding of ['gzip', 'br']) {
    const res = await http(m1.address, path, { ...post, headers: { cookie: `${COOKIE}=m2`, 'transfer-encoding': 'chunked', 'accept-encoding': encoding } })
    t.equal(res.status, 200)
    t.equal(res.headers['content-encoding'], encoding, `${encoding}: compressed (by m2)`)
    t.equal(res.headers.vary, 'Accept-Encoding', 'Vary named once')
    const answer = JSON.parse(decoded(encoding, res.body).toString()) as { machine: string, url: string, headers: Record<string, string> }
    t.equal(answer.machine, 'm2', `${encoding}: one decompression gives m2's JSON: it was compressed once`)
    t.equal(answer.url, path)
    t.equal(answer.headers['accept-encoding'], encoding, 'the app sees the client\'s Accept-Encoding')
  }
  const plain = await http(m1.address, path, { ...post, headers: { cookie: `${COOKIE}=m2`, 'transfer-encoding': 'chunked' } })
  t.equal(plain.headers['content-encoding'], undefined)
  t.equal((JSON.parse(plain.text) as { machine: string }).machine, 'm2')
})

test('the raw path and Fastify compress alike', async (t) => {
  const dir = tempDir({ 'app.mjs': APP })
  const yaml = [
    'server:',
    '  listen: "127.0.0.1:0"',
    'applications:',
    '  command: node',
    `  args: [${JSON.stringify(join(dir, 'app.mjs'))}]`,
    `  start_port: ${tenantStartPort()}`,
    '  tenants:',
    '    - name: t',
    '      path: /t/',
    ''
  ].join('\n')
  const seen: Array<{ headers: Record<string, unknown>, body: Buffer }> = []
  for (const rawPath of [true, false]) {
    const navigator = await buildServer(parseConfig(yaml, { dir }), { env: {}, logger: pino({ level: 'silent' }), rawPath })
    t.teardown(async () => { await navigator.close() })
    const address = await navigator.listen()
    const res = await http(address, '/t/vary', { headers: { 'accept-encoding': 'gzip, br' } })
    t.equal(res.headers['content-encoding'], 'br', rawPath ? 'raw path' : 'Fastify')
    t.ok(decoded('br', res.body).equals(page(4_000)))
    const { date, ...headers } = res.headers
    seen.push({ headers, body: res.body })
    await navigator.close()
  }
  t.same(seen[1].headers, seen[0].headers, 'the same headers')
  t.ok(seen[1].body.equals(seen[0].body), 'the same bytes')
})

/** The response and its first body chunk, with the rest of the body still to read. */
async function firstChunk (address: string, path: string, headers: Record<string, string>): Promise<{ response: IncomingMessage, first: Buffer }> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers, agent: false }, (response) => {
      response.once('data', (first: Buffer) => {
        response.pause()
        resolve({ response, first })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

/** The rest of a response's body. */
async function rest (response: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of response) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function within<T> (promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no ${what} within ${timeoutMs} ms`)) }, timeoutMs) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
