import { test } from 'tap'
import pino from 'pino'
import { parseConfig } from '@navigator/config'
import { buildServer } from '../src/server.js'
import { handshake, http, startSite, tempDir, tenant, tenantStartPort } from './helpers.js'
import type { LogLine, Running } from './helpers.js'

// server.root_path, server.hostname and server.trust_proxy through the real navigator, with a tenant that echoes the
// request it gets. (Without trust_proxy, X-Forwarded-* are trusted on Fly only: forwarded-headers.test.ts.)

interface TenantView { url: string, headers: Record<string, string> }

const seen = (text: string): TenantView => JSON.parse(text) as TenantView

const FORGED = {
  'x-forwarded-for': '203.0.113.9',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'example.test'
}

test('root_path: static files are looked up below it, its bare path is redirected, tenants see their whole path', async (t) => {
  const nav = await startSite(t, {
    server: ['  root_path: /showcase/', '  static:', '    try_files: [.html]'],
    tenants: [tenant('alpha', '/showcase/alpha')]
  }, {
    files: {
      'public/app.css': 'body {}\n',
      'public/about.html': '<p>about</p>\n',
      'public/index.html': '<h1>home</h1>\n',
      'public/robots.txt': 'User-agent: *\n',
      'secret.txt': 'SECRET\n'
    },
    warm: ['/showcase/alpha/page']
  })
  t.match(await http(nav.address, '/showcase/app.css'), { status: 200, text: 'body {}\n' }, '/showcase/app.css is public/app.css')
  t.match(await http(nav.address, '/showcase/about'), { status: 200, text: '<p>about</p>\n' }, 'try_files below the root path')
  t.match(await http(nav.address, '/showcase/'), { status: 200, text: '<h1>home</h1>\n' }, 'the root path is public/index.html')
  t.match(await http(nav.address, '/showcase?x=1'), { status: 301, headers: { location: '/showcase/?x=1' } }, 'without its slash: redirected to it, query kept')
  const page = await http(nav.address, '/showcase/alpha/page?x=1')
  t.equal(page.status, 200)
  t.equal(seen(page.text).url, '/showcase/alpha/page?x=1', 'a tenant is routed and asked with the whole path')
  t.match(await http(nav.address, '/robots.txt'), { status: 200, text: 'User-agent: *\n' }, 'a file outside the prefix is still public_dir\'s (robots.txt, favicon.ico live at the top)')
  t.same([
    (await http(nav.address, '/elsewhere/page')).status,
    (await http(nav.address, '/showcase/nothing')).status,
    (await http(nav.address, '/showcase/alpha-not/page')).status
  ], [404, 404, 404], 'outside every route, and below the root but nothing there: 404')
  for (const path of ['/showcase/../secret.txt', '/showcase/%2e%2e/secret.txt', '/showcase/..%2fsecret.txt', '/showcase/%2e%2e%2fsecret.txt']) {
    const answer = await http(nav.address, path)
    t.not(answer.text, 'SECRET\n', `${path}: never the file beside public_dir (${answer.status})`)
    t.ok(answer.status === 404 || answer.status === 400, `${path}: ${answer.status}`)
  }
})

async function trustSite (t: Parameters<typeof startSite>[0], trustProxy: boolean, env: NodeJS.ProcessEnv): Promise<Running> {
  const startPort = tenantStartPort()
  return await startSite(t, {
    server: ['  health_check: /up', '  hostname: Example.Test', `  trust_proxy: ${String(trustProxy)}`],
    routes: [
      '  reverse_proxies:',
      '    - prefix: /ext/',
      `      target: "http://127.0.0.1:${startPort}/alpha"`,
      '      strip_path: true',
      '      headers:',
      '        X-Real-IP: $remote_addr',
      '        X-Scheme: $scheme',
      '        X-Host: $host'
    ],
    startPort,
    tenants: [tenant('alpha', '/alpha', 'start: eager')]
  }, { env, warm: ['/alpha/page'], headers: { host: 'example.test' } })
}

test('trust_proxy true: the client\'s X-Forwarded-* reach the app, the peer appended; $remote_addr, $scheme and $host are theirs', async (t) => {
  const nav = await trustSite(t, true, { FLY_MACHINE_ID: '' })
  const page = await http(nav.address, '/alpha/page', { headers: { host: 'proxy.internal', ...FORGED } })
  t.equal(page.status, 200, 'X-Forwarded-Host names the site: served, though Host names another')
  const headers = seen(page.text).headers
  t.equal(headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'appended to, not replaced')
  t.equal(headers['x-forwarded-proto'], 'https')
  t.equal(headers['x-forwarded-host'], 'example.test')
  const external = await http(nav.address, '/ext/page', { headers: { host: 'proxy.internal', ...FORGED } })
  t.equal(external.status, 200, external.text)
  t.match(seen(external.text), { url: '/alpha/page', headers: { 'x-real-ip': '203.0.113.9', 'x-scheme': 'https', 'x-host': 'example.test' } }, 'a reverse proxy\'s variables')
  const direct = seen((await http(nav.address, '/alpha/page', { headers: { host: 'example.test' } })).text).headers
  t.same([direct['x-forwarded-for'], direct['x-forwarded-proto']], ['127.0.0.1', 'http'], 'a client that sends none: the connection\'s own')
})

test('trust_proxy false, even on a Fly Machine: the client\'s X-Forwarded-* are replaced by what Navigator sees', async (t) => {
  const nav = await trustSite(t, false, { FLY_MACHINE_ID: 'm1abc', FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' })
  const page = await http(nav.address, '/alpha/page', { headers: { ...FORGED, host: 'example.test:8080' } })
  t.equal(page.status, 200)
  const headers = seen(page.text).headers
  t.equal(headers['x-forwarded-for'], '127.0.0.1', 'only the socket\'s address')
  t.equal(headers['x-forwarded-proto'], 'http', 'this connection\'s scheme')
  t.equal(headers['x-forwarded-host'], 'example.test:8080', 'the Host header')
  const external = seen((await http(nav.address, '/ext/page', { headers: { ...FORGED, host: 'example.test' } })).text)
  t.match(external.headers, { 'x-real-ip': '127.0.0.1', 'x-scheme': 'http', 'x-host': 'example.test' }, 'a reverse proxy\'s variables: the connection\'s')
  t.equal((await http(nav.address, '/alpha/page', { headers: { ...FORGED, host: 'proxy.internal' } })).status, 421, 'an untrusted X-Forwarded-Host does not make another host this site')
})

test('hostname: a request for another host gets 421, WebSockets included; the health check answers any host', async (t) => {
  const nav = await trustSite(t, false, { FLY_MACHINE_ID: '' })
  const statusFor = async (host: string, path = '/alpha/page'): Promise<number> => (await http(nav.address, path, { headers: { host } })).status
  t.same([await statusFor('example.test'), await statusFor('EXAMPLE.test:3000'), await statusFor('example.test.')], [200, 200, 200], 'the name in any case, with a port or a final dot')
  const misdirected = await http(nav.address, '/alpha/page', { headers: { host: 'other.test' } })
  t.match(misdirected, { status: 421, text: 'Misdirected Request\n' }, 'another host')
  t.same([await statusFor('example.test.evil'), await statusFor('127.0.0.1'), await statusFor('sub.example.test')], [421, 421, 421], 'a longer name, an address, a subdomain')
  t.equal(await statusFor('other.test', '/ext/page'), 421, 'a reverse proxy route too')
  t.equal(await statusFor('other.test', '/nowhere'), 421, 'before the 404 of a path nothing serves')
  t.match(await http(nav.address, '/up', { headers: { host: '10.0.0.7:3000' } }), { status: 200, text: 'OK\n' }, 'the platform\'s health check, by address')
  t.equal(await handshake(nav.address, '/alpha/cable', { host: 'other.test' }), 421, 'a WebSocket upgrade for another host')
  t.equal(await handshake(nav.address, '/alpha/cable', { host: 'example.test' }), 101, 'and for this one')
})

test('hostname localhost: the loopback addresses are localhost too; the first refusal of each host is logged', async (t) => {
  const nav = await startSite(t, { server: ['  hostname: localhost'], tenants: [tenant('alpha', '/alpha')] })
  const port = new URL(nav.address).port
  const statusFor = async (host: string): Promise<number> => (await http(nav.address, '/nowhere', { headers: { host } })).status
  t.same([await statusFor(`localhost:${port}`), await statusFor(`127.0.0.1:${port}`), await statusFor(`[::1]:${port}`)], [404, 404, 404], 'localhost, 127.0.0.1, [::1]: on to the not-found step')
  t.same([await statusFor('example.com'), await statusFor('EXAMPLE.com:443'), await statusFor('10.0.0.1')], [421, 421, 421], 'a public name or another address: 421')
  const warning = await nav.waitForLog((line) => line.msg === 'a request for another host than server.hostname was answered 421')
  t.match(warning, { host: 'example.com', hostname: 'localhost', level: 40 })
  await nav.waitForLog((line) => line.msg === 'a request for another host than server.hostname was answered 421' && line.host === '10.0.0.1')
  t.equal(nav.logs.filter((line) => line.host === 'example.com').length, 1, 'once per host, whatever its case or port')
})

test('a reload that changes trust_proxy keeps the one read at start, and says so', async (t) => {
  const lines: LogLine[] = []
  const logger = pino({ level: 'info' }, { write (text: string) { lines.push(JSON.parse(text) as LogLine) } })
  const dir = tempDir()
  const config = (trust: boolean): ReturnType<typeof parseConfig> => parseConfig(`server:\n  listen: "127.0.0.1:0"\n  trust_proxy: ${String(trust)}\n`, { dir })
  const navigator = await buildServer(config(false), { env: {}, logger })
  t.teardown(async () => { await navigator.close() })
  await navigator.listen()
  await navigator.reload(config(false))
  t.notOk(lines.some((line) => String(line.msg).startsWith('server.trust_proxy changed')), 'unchanged: no warning')
  await navigator.reload(config(true))
  t.ok(lines.some((line) => line.msg === 'server.trust_proxy changed: a restart is needed; X-Forwarded-* are trusted as at the start' && line.level === 40), 'changed: a warning')
})
