import { symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { test } from 'tap'
import { http, startNavigator, tempDir } from './helpers.js'

const GZIPPED = gzipSync('console.log("compressed")\n')

function site (extra: Record<string, string | Buffer> = {}): string {
  const dir = tempDir({
    'navigator.yml': [
      'server:',
      '  listen: "127.0.0.1:0"',
      '  health_check: /up',
      '  static:',
      '    public_dir: public',
      'routes:',
      '  rewrites:',
      '    - pattern: "^/old/(.*)"',
      '      rewrite: "/$1"',
      ''
    ].join('\n'),
    'secret.txt': 'SECRET outside public_dir\n',
    'public/hello.txt': 'hello world\n',
    'public/index.html': '<h1>home</h1>\n',
    'public/app.js': 'console.log("plain")\n',
    'public/app.js.gz': GZIPPED,
    'public/empty/.keep': '',
    'public/sub/page.html': '<p>sub</p>\n',
    ...extra
  })
  symlinkSync(join(dir, 'secret.txt'), join(dir, 'public', 'link.txt'))
  return dir
}

test('static files: content, ETag and Last-Modified, 304, Range, HEAD', async (t) => {
  const nav = await startNavigator(t, site())
  const first = await http(nav.address, '/hello.txt')
  t.equal(first.status, 200)
  t.equal(first.text, 'hello world\n')
  t.ok(first.headers.etag)
  t.ok(first.headers['last-modified'])
  t.match(first.headers['content-type'], /text\/plain/)

  const notModified = await http(nav.address, '/hello.txt', { headers: { 'if-none-match': String(first.headers.etag) } })
  t.equal(notModified.status, 304)
  t.equal(notModified.body.length, 0)

  const range = await http(nav.address, '/hello.txt', { headers: { range: 'bytes=0-4' } })
  t.equal(range.status, 206)
  t.equal(range.text, 'hello')
  t.equal(range.headers['content-range'], 'bytes 0-4/12')

  const head = await http(nav.address, '/hello.txt', { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], '12')
  t.equal(head.body.length, 0)

  const home = await http(nav.address, '/')
  t.equal(home.status, 200)
  t.equal(home.text, '<h1>home</h1>\n')
})

test('a precompressed .gz sibling is served to clients that accept gzip, the plain file to others', async (t) => {
  const nav = await startNavigator(t, site())
  const gz = await http(nav.address, '/app.js', { headers: { 'accept-encoding': 'gzip' } })
  t.equal(gz.status, 200)
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.match(gz.headers.vary, /accept-encoding/i)
  t.same(gz.body, GZIPPED)
  t.match(gz.headers['content-type'], /javascript/)

  const plain = await http(nav.address, '/app.js')
  t.equal(plain.headers['content-encoding'], undefined)
  t.equal(plain.text, 'console.log("plain")\n')
})

test('no request leaves public_dir: dot segments, encoded dots, double encoding, backslashes, NUL, symlinks', async (t) => {
  const nav = await startNavigator(t, site())
  const attempts = [
    '/../secret.txt',
    '/sub/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/sub/%2e%2e/%2e%2e/secret.txt',
    '/%252e%252e/secret.txt',
    '/%252e%252e%252fsecret.txt',
    '/..%2fsecret.txt',
    '/..%5csecret.txt',
    '/..\\secret.txt',
    '/sub\\..\\..\\secret.txt',
    '/hello.txt%00.html',
    '/%00/../secret.txt',
    '/link.txt',
    '/%',
    '//secret.txt',
    '/hello.txt/../../secret.txt',
    '/hello.txt/more'
  ]
  for (const path of attempts) {
    const answer = await http(nav.address, path)
    t.not(answer.status, 200, `${path} is not served`)
    t.notMatch(answer.text, /SECRET/, `${path} does not leak the file outside public_dir`)
  }
})

test('folders are never listed', async (t) => {
  const nav = await startNavigator(t, site())
  const answer = await http(nav.address, '/empty/')
  t.equal(answer.status, 404)
  t.notMatch(answer.text, /\.keep/)
  const sub = await http(nav.address, '/sub')
  t.equal(sub.status, 404)
})

test('the health check answers 200 from Navigator itself', async (t) => {
  const nav = await startNavigator(t, site())
  const answer = await http(nav.address, '/up')
  t.equal(answer.status, 200)
  const withQuery = await http(nav.address, '/up?probe=1')
  t.equal(withQuery.status, 200)
})

test('a rewrite computes the forwarded path that static files are looked up with', async (t) => {
  const nav = await startNavigator(t, site())
  const answer = await http(nav.address, '/old/hello.txt')
  t.equal(answer.status, 200)
  t.equal(answer.text, 'hello world\n')
})

test('a path nothing serves is a 404, and so is a POST to a static file', async (t) => {
  const nav = await startNavigator(t, site())
  t.equal((await http(nav.address, '/nothing/here')).status, 404)
  const post = await http(nav.address, '/hello.txt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
  t.equal(post.status, 404)
})

test('a tenant that does not become ready in time gets the configured maintenance page: 503, no-store, Retry-After', async (t) => {
  const dir = tempDir({
    'navigator.yml': [
      'server:',
      '  listen: "127.0.0.1:0"',
      '  maintenance_page: down.html',
      'applications:',
      '  startup_timeout: 300ms',
      '  tenants:',
      '    - name: stuck',
      '      path: /stuck',
      '      command: node',
      '      args: ["-e", "setInterval(() => {}, 1000)"]',
      ''
    ].join('\n'),
    'public/down.html': '<h1>down for maintenance</h1>\n'
  })
  const nav = await startNavigator(t, dir)
  const started = Date.now()
  const answer = await http(nav.address, '/stuck/page')
  t.ok(Date.now() - started < 5000, 'answers promptly after startup_timeout')
  t.equal(answer.status, 503)
  t.equal(answer.headers['cache-control'], 'no-store')
  t.equal(answer.headers['retry-after'], '5')
  t.match(answer.headers['content-type'], /text\/html/)
  t.equal(answer.text, '<h1>down for maintenance</h1>\n')
})

test('per-request log lines appear at LOG_LEVEL=debug only', async (t) => {
  const quiet = await startNavigator(t, site())
  t.equal((await http(quiet.address, '/hello.txt')).status, 200)
  t.equal((await http(quiet.address, '/nothing')).status, 404)
  const verbose = await startNavigator(t, site(), { LOG_LEVEL: 'debug' })
  t.equal((await http(verbose.address, '/hello.txt')).status, 200)
  const line = await verbose.waitForLog((l) => l.msg === 'request completed')
  t.match(line, { method: 'GET', url: '/hello.txt', status: 200, level: 20 })
  // The quiet server answered both requests before the verbose one logged; nothing per request at info.
  t.equal(quiet.logs.filter((l) => l.url !== undefined || /request/.test(String(l.msg))).length, 0)
})
