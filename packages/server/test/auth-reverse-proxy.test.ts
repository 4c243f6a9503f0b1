import { test } from 'tap'
import { createServer, type Server } from 'node:http'
import WebSocket, { WebSocketServer } from 'ws'
import { http, startNavigator, tempDir } from './helpers.js'

// `auth` in front of routes.reverse_proxies, through the real navigator: a reverse proxy's target (a server Navigator
// does not run) sees neither a request nor a WebSocket upgrade without the password.

// admin:secret, bcrypt of cost 4; ops:secret, SHA-512 crypt (`openssl passwd -6 -salt saltsalt secret`).
const HTPASSWD = 'admin:$2b$04$ulo/tqKHqnaOanphZTRH5OMNgzjlKAfu2dkWhtTSLiIJxpbjBOLfO\n' +
  'ops:$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1\n'
const AUTHORISED = `Basic ${Buffer.from('admin:secret').toString('base64')}`

test('a reverse proxy behind auth: 401 without the password, before anything reaches the target', async (t) => {
  const seen: string[] = []
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''}`)
    req.resume()
    res.end('target')
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    seen.push(`upgrade ${req.url ?? ''}`)
    ws.on('message', (data) => { ws.send(`echo ${String(data)}`) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const dir = tempDir({
    htpasswd: HTPASSWD,
    'navigator.yml': [
      'server:',
      '  listen: "127.0.0.1:0"',
      'auth:',
      '  enabled: true',
      '  htpasswd: htpasswd',
      'routes:',
      '  reverse_proxies:',
      '    - prefix: /api/',
      `      target: ${origin}`,
      '      websocket: true',
      ''
    ].join('\n')
  })
  const nav = await startNavigator(t, dir)

  const refused = await http(nav.address, '/api/things', { method: 'POST', body: 'x'.repeat(2000) })
  t.match(refused, { status: 401, headers: { 'www-authenticate': 'Basic realm="Restricted"' } })
  const wrong = await http(nav.address, '/api/things', { headers: { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` } })
  t.equal(wrong.status, 401, 'a wrong password')
  const upgrade = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${nav.address.replace('http', 'ws')}/api/socket`)
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0) })
    ws.on('open', () => { ws.close(); resolve(101) })
    ws.on('error', reject)
  })
  t.equal(upgrade, 401, 'a WebSocket upgrade without the password')
  t.same(seen, [], 'the target saw nothing')

  const served = await http(nav.address, '/api/things', { headers: { authorization: AUTHORISED } })
  t.same([served.status, served.text], [200, 'target'], 'with the password: proxied')
  const ops = (password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`ops:${password}`).toString('base64')}` })
  t.equal((await http(nav.address, '/api/sha', { headers: ops('wrong') })).status, 401, 'a SHA-512 crypt user with a wrong password')
  t.equal((await http(nav.address, '/api/sha', { headers: ops('secret') })).status, 200, 'and with the right one')
  const echoed = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`${nav.address.replace('http', 'ws')}/api/socket`, { headers: { authorization: AUTHORISED } })
    ws.on('open', () => { ws.send('hi') })
    ws.on('message', (data) => { resolve(String(data)); ws.close() })
    ws.on('error', reject)
  })
  t.equal(echoed, 'echo hi', 'and the upgrade is relayed')
  t.same(seen, ['GET /api/things', 'GET /api/sha', 'upgrade /api/socket'])
})
