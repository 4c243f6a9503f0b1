import { test } from 'tap'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { connect } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import { freePort, http, startNavigator, tempDir } from './helpers.js'

// routes.reverse_proxies through the real navigator, to a plain HTTP server and a WebSocket server of this test on
// 127.0.0.1: servers Navigator does not run.

interface Seen { url: string, headers: IncomingHttpHeaders }

async function startTarget (t: Parameters<Parameters<typeof test>[1]>[0]): Promise<{ port: number, seen: Seen[] }> {
  const seen: Seen[] = []
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers })
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'x-from': 'target' })
    res.end(JSON.stringify({ url: req.url, headers: req.headers }))
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    ws.on('message', (data) => { ws.send(`${req.url ?? ''} ${String(data)}`) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { port: (server.address() as { port: number }).port, seen }
}

function config (target: number, closed: number): string {
  const origin = `http://127.0.0.1:${target}`
  return [
    'server:',
    '  listen: "127.0.0.1:0"',
    'routes:',
    '  reverse_proxies:',
    '    - name: users',
    '      path: "^/users/([0-9]+)/(\\\\w+)$"',
    `      target: ${origin}/v1/user/$1/$2`,
    '    - prefix: /api/',
    `      target: ${origin}/base/`,
    '      strip_path: true',
    '      headers:',
    '        X-Real-IP: $remote_addr',
    '        X-Original-Host: "$host"',
    '        X-Scheme: "$scheme"',
    '        X-Both: "$scheme://$host/"',
    '        X-Static: plain',
    '    - prefix: /svc/',
    `      target: ${origin}`,
    '      response_headers:',
    '        Access-Control-Allow-Origin: "*"',
    '        X-Frame-Options: SAMEORIGIN',
    '    - prefix: /ws',
    `      target: ${origin}`,
    '      websocket: true',
    '    - prefix: /down/',
    `      target: http://127.0.0.1:${closed}`,
    ''
  ].join('\n')
}

/** Writes `text` on a new connection and returns everything the server sends until it closes (or 5 s pass). */
async function raw (address: string, text: string): Promise<string> {
  const { hostname, port } = new URL(address)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => { socket.write(text) })
    let received = ''
    socket.setTimeout(5_000, () => { socket.destroy() })
    socket.on('data', (chunk: Buffer) => { received += chunk.toString() })
    socket.on('close', () => { resolve(received) })
    socket.on('error', reject)
  })
}

test('reverse proxies send requests to servers Navigator does not run', async (t) => {
  const target = await startTarget(t)
  const navigator = await startNavigator(t, tempDir({ 'navigator.yml': config(target.port, await freePort()) }))
  const address = navigator.address
  const navigatorHost = new URL(address).host

  await t.test('a path regex: $1, $2 in the target are its groups, and the query string is kept', async (t) => {
    const answer = await http(address, '/users/42/profile?tab=1')
    t.equal(answer.status, 200)
    const seen = JSON.parse(answer.text) as Seen
    t.equal(seen.url, '/v1/user/42/profile?tab=1')
    t.equal(seen.headers.host, `127.0.0.1:${target.port}`, 'the target gets its own Host')
    t.equal(seen.headers['x-forwarded-host'], navigatorHost, 'and the request\'s in X-Forwarded-Host')
    t.equal(answer.headers['x-from'], 'target', 'the target\'s headers come back')
    t.equal((await http(address, '/users/abc/profile')).status, 404, 'no match: on to the next steps')
  })

  await t.test('a prefix with strip_path: the rest of the path goes after the target\'s path', async (t) => {
    const seen = JSON.parse((await http(address, '/api/things/1?q=x')).text) as Seen
    t.equal(seen.url, '/base/things/1?q=x')
    const root = JSON.parse((await http(address, '/api/')).text) as Seen
    t.equal(root.url, '/base/')
  })

  await t.test('headers: $remote_addr, $host and $scheme are the request\'s', async (t) => {
    const seen = JSON.parse((await http(address, '/api/h', { headers: { 'x-static': 'from the client' } })).text) as Seen
    t.equal(seen.headers['x-real-ip'], '127.0.0.1')
    t.equal(seen.headers['x-original-host'], navigatorHost)
    t.equal(seen.headers['x-scheme'], 'http')
    t.equal(seen.headers['x-both'], `http://${navigatorHost}/`)
    t.equal(seen.headers['x-static'], 'plain', 'a configured header replaces the client\'s')
  })

  await t.test('a client\'s Host is never copied into a header unchecked', async (t) => {
    const before = target.seen.length
    const split = await raw(address, 'GET /api/x HTTP/1.1\r\nHost: a\rX-Injected: yes\r\nConnection: close\r\n\r\n')
    t.match(split, /^HTTP\/1\.1 400 /, 'a bare CR in a header: Node refuses the request')
    t.equal(target.seen.length, before, 'and the target never sees it')
    const odd = await raw(address, 'GET /api/x HTTP/1.1\r\nHost: evil"<script>\r\nConnection: close\r\n\r\n')
    t.match(odd, /^HTTP\/1\.1 200 /)
    const seen = target.seen[target.seen.length - 1]
    t.equal(seen.headers['x-original-host'], '', 'a Host that is no host name: $host is empty')
    t.equal(seen.headers['x-both'], 'http:///')
  })

  await t.test('a prefix without strip_path keeps the whole path; response_headers are added', async (t) => {
    const answer = await http(address, '/svc/page')
    t.equal((JSON.parse(answer.text) as Seen).url, '/svc/page')
    t.equal(answer.headers['access-control-allow-origin'], '*')
    t.equal(answer.headers['x-frame-options'], 'SAMEORIGIN')
    t.equal(answer.headers['x-from'], 'target')
    const before = target.seen.length
    const preflight = await http(address, '/svc/page', { method: 'OPTIONS' })
    t.match(preflight, { status: 200, text: '', headers: { 'access-control-allow-origin': '*' } }, 'a preflight is answered with them')
    t.equal(target.seen.length, before, 'without asking the target')
  })

  await t.test('websocket: true relays an upgrade to the target', async (t) => {
    const ws = new WebSocket(`${address.replace('http', 'ws')}/ws/room?id=1`)
    t.teardown(() => { ws.terminate() })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    ws.send('hello')
    const echo = await new Promise<string>((resolve) => ws.once('message', (data) => { resolve(String(data)) }))
    t.equal(echo, '/ws/room?id=1 hello')
    ws.close()
  })

  await t.test('an upgrade on a route without websocket: true is refused with 400', async (t) => {
    const ws = new WebSocket(`${address.replace('http', 'ws')}/svc/socket`)
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_, res) => { resolve(res.statusCode ?? 0) })
      ws.once('error', () => { resolve(0) })
    })
    t.equal(status, 400)
    ws.terminate()
  })

  await t.test('an unreachable target: 502 at once', async (t) => {
    const started = Date.now()
    const answer = await http(address, '/down/page')
    t.equal(answer.status, 502)
    t.ok(Date.now() - started < 2_000, 'no wait for a timeout')
    t.notMatch(answer.text, /127\.0\.0\.1/, 'the answer does not name the target')
  })
})
