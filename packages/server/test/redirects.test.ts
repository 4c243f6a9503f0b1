import { connect } from 'node:net'
import { test } from 'tap'
import { http, runCli, startSite, tempDir, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// routes.redirects and routes.rewrites with `redirect: true`, through the real navigator process: their statuses and
// Location, the query string kept, the first matching rule of the one list deciding, and a Location that never
// carries a CR, an LF or another host whatever the request put in the path.

async function site (t: Parameters<typeof startSite>[0]): Promise<Running> {
  return await startSite(t, {
    routes: [
      '  redirects:',
      '    - from: "^/old-blog/(.*)"',
      '      to: "/blog/$1"',
      '    - from: "^/docs$"',
      '      to: "https://docs.example.com/?from=navigator"',
      '      status: 308',
      '  rewrites:',
      '    - pattern: "^/api/v1/(.*)"',
      '      rewrite: "/api/latest/$1"',
      '    - pattern: "^/api/v[12]/(.*)"',
      '      rewrite: "/api/v3/$1"',
      '      redirect: true',
      '      status: 301',
      '    - pattern: "^/home$"',
      '      rewrite: "/"',
      '      redirect: true',
      '    - pattern: "^/echo/(.*)$"',
      '      rewrite: "/$1"',
      '      redirect: true',
      '      status: 307'
    ],
    tenants: [tenant('app', '/')]
  })
}

/** Sends `target` as raw bytes (no client-side checks) and returns the whole answer. */
async function raw (navigator: Running, target: Buffer): Promise<string> {
  const url = new URL(navigator.address)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
    socket.write(Buffer.concat([Buffer.from('GET '), target, Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]))
  })
}

test('routes.redirects answer 302 unless told, with the groups and the query string', async (t) => {
  const navigator = await site(t)
  const moved = await http(navigator.address, '/old-blog/2024/post?ref=rss')
  t.equal(moved.status, 302)
  t.equal(moved.headers.location, '/blog/2024/post?ref=rss')
  t.equal(moved.body.length, 0)
  const away = await http(navigator.address, '/docs?x=1')
  t.equal(away.status, 308)
  t.equal(away.headers.location, 'https://docs.example.com/?from=navigator', 'a target with its own query keeps it')
  const post = await http(navigator.address, '/old-blog/x', { method: 'POST', body: 'data' })
  t.equal(post.status, 302, 'every method')
})

test('a rewrite with redirect: true answers its status; an earlier plain rewrite still wins', async (t) => {
  const navigator = await site(t)
  const v2 = await http(navigator.address, '/api/v2/things')
  t.equal(v2.status, 301)
  t.equal(v2.headers.location, '/api/v3/things')
  const home = await http(navigator.address, '/home')
  t.equal(home.status, 302, 'the default status')
  t.equal(home.headers.location, '/')
  const v1 = await http(navigator.address, '/api/v1/things')
  t.equal(v1.status, 200, 'the first matching rule is a rewrite: the app answers')
  t.equal(JSON.parse(v1.text).url, '/api/latest/things')
})

test('the Location never carries CR, LF, spaces or another host from the request', async (t) => {
  const navigator = await site(t)
  const encoded = await raw(navigator, Buffer.from('/echo/a%0D%0ASet-Cookie:%20evil=1'))
  t.match(encoded, /^HTTP\/1\.1 307 /)
  t.notMatch(encoded, /\r\nset-cookie: evil/i)
  t.match(encoded, /\r\nlocation: \/a%0D%0ASet-Cookie:%20evil=1\r\n/i)
  const bare = await raw(navigator, Buffer.from('/echo/a\r\nSet-Cookie: evil=1'))
  t.notMatch(bare, /\r\nset-cookie: evil/i, 'a bare CR LF never reaches a step')
  const utf8 = await raw(navigator, Buffer.from('/echo/café'))
  t.notMatch(utf8, /\r\nlocation: [^\r]*[^\x21-\x7e\r]/i, 'no byte beyond ASCII in a Location (Node refuses such a target)')
  for (const path of ['/echo//evil.example/x', '/echo/%2F%2Fevil.example', '/echo/\\evil.example']) {
    const answer = await raw(navigator, Buffer.from(path))
    const location = /\r\nlocation: ([^\r]*)\r\n/i.exec(answer)?.[1] ?? ''
    t.notMatch(location, /^[/\\]{2}/, `${path}: ${location}`)
  }
})

test('a redirect status that is no redirect is a configuration error', async (t) => {
  const dir = tempDir({ 'navigator.yml': 'routes:\n  redirects:\n    - from: "^/a"\n      to: /b\n      status: 200\n' })
  const check = await runCli(['--check', `${dir}/navigator.yml`])
  t.not(check.code, 0)
  t.match(check.stderr + check.stdout, /status/)
})

test('locationOf percent-encodes what could split or bend the header', async (t) => {
  const { locationOf } = await import('../src/steps/redirects.js')
  t.equal(locationOf('/caf\u00e9 bar'), '/caf%C3%A9%20bar')
  t.equal(locationOf('/a\r\nSet-Cookie: x=1'), '/a%0D%0ASet-Cookie:%20x=1')
  t.equal(locationOf('//evil.example/x'), '/evil.example/x')
  t.equal(locationOf('/\\evil.example'), '/evil.example')
  t.equal(locationOf('https://docs.example.com/a?b=1'), 'https://docs.example.com/a?b=1')
})
