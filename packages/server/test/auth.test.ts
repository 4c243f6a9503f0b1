import { test } from 'tap'
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { createServer, request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { freePort, http, runCli, startNavigator, tempDir } from './helpers.js'
import type { Running } from './helpers.js'

// `auth` through the real navigator process: each hash kind, the 401 and its realm, public paths that open no more
// than they say, and every way a request could reach an upstream (a rewrite, a replay rule, a sticky replay, the
// direct proxy of a large body, a WebSocket upgrade) refused before anything is forwarded. The tenant and the peer
// Machine count what they see.

const aprMd5 = createRequire(import.meta.url)('apache-md5') as (password: string, salt?: string) => string
const basic = (credentials: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(credentials).toString('base64')}` })
const sha = (password: string): string => `{SHA}${createHash('sha1').update(password).digest('base64')}`

const HTPASSWD = [
  '# one user of each kind',
  `bea:${bcrypt.hashSync('bcrypt-pw', 4).replace(/^\$2b\$/, '$2y$')}`,
  `abe:${aprMd5('apr1-pw')}`,
  `sam:${sha('sha-pw')}`,
  ''
].join('\n')

// A tenant that says on its stdout (which Navigator logs) what it saw; plain node, so that it needs no package.
const TENANT = `
import { createServer } from 'node:http'
const server = createServer((req, res) => {
  console.log('tenant saw ' + req.method + ' ' + req.url)
  req.resume()
  req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('tenant ' + req.url + '\\n') })
})
server.on('upgrade', (req, socket) => {
  console.log('tenant saw upgrade ' + req.url)
  socket.end('HTTP/1.1 101 Switching Protocols\\r\\nupgrade: websocket\\r\\nconnection: upgrade\\r\\n\\r\\n')
})
server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => { server.close(); process.exit(0) })
`

interface Peer { url: string, seen: string[] }

/** Another Machine of the app, as the direct proxy reaches it: it records every request. */
async function startPeer (t: Parameters<Parameters<typeof test>[1]>[0]): Promise<Peer> {
  const seen: string[] = []
  const server = createServer((req, res) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''}`)
    req.resume()
    req.on('end', () => { res.end('peer\n') })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen }
}

function config (startPort: number, cablePort: number, peer: string): string {
  return [
    'server:',
    '  listen: "127.0.0.1:0"',
    'auth:',
    '  enabled: true',
    '  realm: "Staff only"',
    '  htpasswd: htpasswd',
    '  public_paths: ["/assets/*", "/pub/*", "*.css", "/favicon.ico"]',
    '  auth_patterns:',
    '    - pattern: "^/open/"',
    '      action: "off"',
    '    - pattern: "^/admin/"',
    '      action: Admins',
    'routes:',
    '  rewrites:',
    '    - pattern: "^/pub/(.*)"',
    '      rewrite: "/private/$1"',
    '  fly:',
    '    max_replay_body: 10',
    '    replay:',
    '      - path: "^/api/"',
    '        region: iad',
    '    sticky_sessions:',
    '      enabled: true',
    '      paths: ["/app/*"]',
    '      peers:',
    `        m2: "${peer}"`,
    'applications:',
    '  command: node',
    '  args: [tenant.mjs]',
    `  start_port: ${startPort}`,
    '  tenants:',
    '    - name: site',
    '      path: /',
    '      start: eager',
    '  standalone_servers:',
    '    - name: cable',
    '      match_path: /cable',
    '      command: node',
    '      args: [tenant.mjs]',
    `      port: ${cablePort}`,
    `      env: { PORT: "${cablePort}" }`,
    ''
  ].join('\n')
}

async function startAuthSite (t: Parameters<Parameters<typeof test>[1]>[0], htpasswd = HTPASSWD): Promise<{ nav: Running, peer: Peer, dir: string }> {
  const peer = await startPeer(t)
  const dir = tempDir({ 'tenant.mjs': TENANT, htpasswd, 'navigator.yml': config(await freePort(), await freePort(), peer.url) })
  const nav = await startNavigator(t, dir, { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'auth', FLY_REGION: 'ord' })
  const warm = await http(nav.address, '/ready', { headers: basic('sam:sha-pw') })
  if (warm.status !== 200) throw new Error(`the tenant does not answer: ${warm.status}`)
  return { nav, peer, dir }
}

/** What the tenant saw, in order, up to a request made now (the marker), which is waited for in the log. */
async function tenantSaw (nav: Running): Promise<string[]> {
  const marker = `/marker-${Math.random().toString(36).slice(2)}`
  await http(nav.address, marker, { headers: basic('sam:sha-pw') })
  await nav.waitForLog((line) => line.msg === `tenant saw GET ${marker}`)
  return nav.logs.map((line) => line.msg ?? '').filter((msg) => msg.startsWith('tenant saw ') && !msg.includes('/marker-') && !msg.endsWith(' /ready'))
}

test('auth through the real server', async (t) => {
  const { nav, peer } = await startAuthSite(t)

  t.test('the right password of each kind is served; a wrong or missing one gets 401 with the realm', async (t) => {
    for (const credentials of ['bea:bcrypt-pw', 'abe:apr1-pw', 'sam:sha-pw']) {
      const answer = await http(nav.address, '/page', { headers: basic(credentials) })
      t.match(answer, { status: 200, text: 'tenant /page\n' }, credentials.split(':')[0])
    }
    const again = await http(nav.address, '/page', { headers: basic('bea:bcrypt-pw') })
    t.equal(again.status, 200, 'a verified bcrypt password again (from the cache)')
    const before = (await tenantSaw(nav)).length
    for (const headers of [{}, basic('bea:wrong'), basic('abe:wrong'), basic('sam:wrong'), basic('nobody:x'), { authorization: 'Bearer abc' }, basic('sam')]) {
      const answer = await http(nav.address, '/secret', { headers })
      t.match(answer, { status: 401, headers: { 'www-authenticate': 'Basic realm="Staff only"' } }, JSON.stringify(headers))
    }
    const admin = await http(nav.address, '/admin/users')
    t.match(admin, { status: 401, headers: { 'www-authenticate': 'Basic realm="Admins"' } }, 'an auth pattern names its own realm')
    t.equal((await tenantSaw(nav)).length, before, 'the tenant saw none of the refused requests')
  })

  t.test('public paths open what they say and no more, on the resolved path', async (t) => {
    for (const path of ['/assets/app.js', '/assets/deep/a.png', '/deep/style.css', '/favicon.ico', '/open/door', '/admin/../assets/x.js']) {
      t.equal((await http(nav.address, path)).status, 200, `${path}: public`)
    }
    for (const path of ['/assets', '/assetsX', '/assetsX/a.js', '/assets/../admin', '/assets/%2e%2e/secret', '/a.css/admin', '/favicon.ico/x', '/x/favicon.ico', '/admin/open/']) {
      t.equal((await http(nav.address, path)).status, 401, `${path}: protected`)
    }
    t.notOk((await tenantSaw(nav)).some((seen) => /assetsX|admin|secret|a\.css\/|favicon\.ico\/|x\/favicon/.test(seen)), 'the tenant saw none of the protected ones')
  })

  t.test('a protected path reached through a rewrite, a replay rule, a sticky replay or the direct proxy gets 401 first', async (t) => {
    const before = (await tenantSaw(nav)).length
    const rewritten = await http(nav.address, '/pub/report')
    t.equal(rewritten.status, 401, 'a public path rewritten to a protected one')
    const replay = await http(nav.address, '/api/things')
    t.equal(replay.status, 401, 'a replay rule')
    t.equal(replay.headers['fly-replay'], undefined, 'with no fly-replay')
    const sticky = await http(nav.address, '/app/page', { headers: { cookie: '_navigator_machine=m2' } })
    t.equal(sticky.status, 401, 'a cookie for another Machine')
    t.equal(sticky.headers['fly-replay'], undefined, 'not replayed')
    const large = await http(nav.address, '/app/upload', { method: 'POST', headers: { cookie: '_navigator_machine=m2', 'content-type': 'text/plain' }, body: 'x'.repeat(100_000) })
    t.equal(large.status, 401, 'a body too large to replay')
    t.same(peer.seen, [], 'the other Machine saw nothing')
    t.equal((await tenantSaw(nav)).length, before, 'nor did the tenant')

    // The same requests with the password go where they went without auth.
    const authorised = basic('abe:apr1-pw')
    t.match(await http(nav.address, '/pub/report', { headers: authorised }), { status: 200, text: 'tenant /private/report\n' })
    t.match(await http(nav.address, '/api/things', { headers: authorised }), { status: 307, headers: { 'fly-replay': /^region=iad/ } })
    t.match(await http(nav.address, '/app/page', { headers: { ...authorised, cookie: '_navigator_machine=m2' } }), { status: 307, headers: { 'fly-replay': /^instance=m2/ } })
    const proxied = await http(nav.address, '/app/upload', { method: 'POST', headers: { ...authorised, cookie: '_navigator_machine=m2', 'content-type': 'text/plain' }, body: 'x'.repeat(100_000) })
    t.equal(proxied.status, 200, 'a large body with the password: proxied')
    t.same(peer.seen, ['POST /app/upload'], 'to the other Machine')
  })

  t.test('a standalone server, and a WebSocket upgrade to it, without the password: 401, and it sees nothing', async (t) => {
    t.equal((await http(nav.address, '/cable')).status, 401, 'a plain request')
    const refused = await upgrade(nav.address, '/cable', {})
    t.match(refused, { status: 401, headers: { 'www-authenticate': 'Basic realm="Staff only"' } })
    const accepted = await upgrade(nav.address, '/cable', basic('bea:bcrypt-pw'))
    t.equal(accepted.status, 101, 'with it: switched')
    const seen = await tenantSaw(nav)
    t.same(seen.filter((line) => line.includes('/cable')), ['tenant saw upgrade /cable'], 'the server saw the authorised upgrade only')
  })
})

/** Asks for a WebSocket upgrade; the status and headers of the answer (101 or a refusal). */
async function upgrade (address: string, path: string, headers: Record<string, string>): Promise<{ status: number, headers: IncomingMessage['headers'] }> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      path,
      agent: false,
      headers: { ...headers, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }
    })
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers }) })
    req.on('response', (res) => { res.resume(); resolve({ status: res.statusCode ?? 0, headers: res.headers }) })
    req.on('error', reject)
    req.end()
  })
}

test('a changed htpasswd file is read again while running: a new user gets in, a removed one is refused', async (t) => {
  const { nav, dir } = await startAuthSite(t)
  t.equal((await http(nav.address, '/page', { headers: basic('bea:bcrypt-pw') })).status, 200, 'cached before the change')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(join(dir, 'htpasswd'), `sam:${sha('sha-pw')}\nnew:${sha('new-pw')}\n`)
  const deadline = Date.now() + 5_000
  let status = 0
  while (Date.now() < deadline && (status = (await http(nav.address, '/page', { headers: basic('new:new-pw') })).status) !== 200) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 200, 'the new user, within the recheck interval')
  t.equal((await http(nav.address, '/page', { headers: basic('bea:bcrypt-pw') })).status, 401, 'the removed user, though verified before')
  t.equal((await http(nav.address, '/page', { headers: basic('sam:sha-pw') })).status, 200, 'the user kept')
  await nav.waitForLog((line) => line.msg === 'htpasswd file read' && line.users === 2)
})

test('config errors of auth are reported with their positions', async (t) => {
  const dir = tempDir({
    'navigator.yml': [
      'auth:',
      '  enabled: true',
      '  htpasswd: missing.htpasswd',
      '  public_paths: ["assets/*"]',
      '  auth_patterns:',
      '    - pattern: "(unclosed"',
      '      action: "off"',
      ''
    ].join('\n')
  })
  const syntax = await runCli(['--check', join(dir, 'navigator.yml')])
  t.equal(syntax.code, 2)
  t.match(syntax.stderr, /navigator\.yml:4:\d+: auth\.public_paths\.0: .*must start with "\/"/)
  t.match(syntax.stderr, /navigator\.yml:6:\d+: auth\.auth_patterns\.0\.pattern: .*/)

  const missing = tempDir({ 'navigator.yml': 'auth:\n  enabled: true\n  htpasswd: missing.htpasswd\n' })
  const check = await runCli(['--check', join(missing, 'navigator.yml')])
  t.equal(check.code, 2)
  t.match(check.stderr, /navigator\.yml:3:\d+: auth\.htpasswd: the htpasswd file .*missing\.htpasswd does not exist/)

  const none = tempDir({ 'navigator.yml': 'auth:\n  enabled: true\n' })
  const noFile = await runCli(['--check', join(none, 'navigator.yml')])
  t.match(noFile.stderr, /navigator\.yml:2:\d+: auth\.enabled: authentication needs `htpasswd`/)
})
