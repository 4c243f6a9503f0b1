import { createHash } from 'node:crypto'
import { symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { http, startSite, tenant } from './helpers.js'
import type { Answer, Running } from './helpers.js'

// A tenant's public_dir through the real navigator: a request under the tenant's path is looked up in the tenant's
// folder (the tenant's path removed), under the rules of server.static, before server.static.public_dir and before
// the tenant; anything else, or anything that could name a file outside the folder, goes on (to the tenant, which
// echoes what it got, so a file's content is never mistaken for the tenant's answer).

const SECRET = 'SECRET beside the folders\n'

async function site (t: Parameters<typeof startSite>[0]): Promise<Running> {
  const nav = await startSite(t, {
    server: [
      '  static:',
      '    allowed_extensions: [css, html, txt]',
      '    try_files: [.html]',
      '    normalize_trailing_slashes: true',
      '    cache_control:',
      '      overrides:',
      '        - path: /alpha/assets/',
      '          max_age: 1y',
      '          immutable: true'
    ],
    tenants: [
      tenant('alpha', '/alpha', 'public_dir: alpha/public'),
      tenant('beta', '/alpha/beta'),
      tenant('gamma', '/gamma')
    ]
  }, {
    files: {
      'alpha/public/app.css': 'alpha css\n',
      'alpha/public/about.html': '<p>alpha about</p>\n',
      'alpha/public/docs/index.html': '<p>alpha docs</p>\n',
      'alpha/public/assets/app-1234.css': 'fingerprinted\n',
      'alpha/public/program.exe': 'MZ\n',
      'alpha/public/.env': 'SECRET=1\n',
      'alpha/public/beta/inside.txt': 'in alpha\'s folder, under beta\'s path\n',
      'alpha/secret.txt': SECRET,
      'secret.txt': SECRET,
      'public/shared.css': 'server css\n',
      'public/alpha/legacy.css': 'server css under /alpha\n',
      'public/gamma/app.css': 'server css under /gamma\n'
    },
    warm: ['/alpha/page', '/alpha/beta/page', '/gamma/page']
  })
  symlinkSync(join(nav.dir, 'alpha', 'secret.txt'), join(nav.dir, 'alpha', 'public', 'link.txt'))
  return nav
}

/** The tenant's JSON answer: the request reached the tenant, with this URL. */
function proxiedTo (t: Tap.Test, answer: Answer, url: string, what: string): void {
  t.equal(answer.status, 200, what)
  t.not(answer.text, SECRET, `${what}: not the file`)
  t.equal((JSON.parse(answer.text) as { url: string }).url, url, `${what}: the tenant was asked for ${url}`)
}

test('a tenant\'s public_dir is served under its path, with server.static\'s rules', async (t) => {
  const nav = await site(t)
  const css = await http(nav.address, '/alpha/app.css')
  t.match(css, { status: 200, text: 'alpha css\n', headers: { 'content-type': /^text\/css/, 'cache-control': 'public, max-age=0' } }, '/alpha/app.css is alpha/public/app.css')
  t.ok(css.headers.etag, 'sent by @fastify/static, with an ETag')
  t.equal((await http(nav.address, '/alpha/app.css', { headers: { 'if-none-match': String(css.headers.etag) } })).status, 304, 'and its 304')
  t.match(await http(nav.address, '/alpha/app.css', { method: 'HEAD' }), { status: 200, text: '' }, 'HEAD')
  t.match(await http(nav.address, '/alpha/assets/app-1234.css'), { status: 200, headers: { 'cache-control': 'public, max-age=31536000, immutable' } }, 'cache_control overrides match the URL path')
  t.match(await http(nav.address, '/alpha/about'), { status: 200, text: '<p>alpha about</p>\n' }, 'try_files')
  t.match(await http(nav.address, '/alpha/docs?x=1'), { status: 301, headers: { location: '/alpha/docs/?x=1' } }, 'normalize_trailing_slashes')
  t.match(await http(nav.address, '/alpha/docs/'), { status: 200, text: '<p>alpha docs</p>\n' }, 'a folder\'s index.html')
  t.match(await http(nav.address, '/alpha/legacy.css'), { status: 200, text: 'server css under /alpha\n' }, 'not in the tenant\'s folder: server.static.public_dir, with the whole path')
  t.match(await http(nav.address, '/shared.css'), { status: 200, text: 'server css\n' }, 'server.static.public_dir as before')
  t.match(await http(nav.address, '/gamma/app.css'), { status: 200, text: 'server css under /gamma\n' }, 'a tenant without a folder: server.static.public_dir')
  proxiedTo(t, await http(nav.address, '/alpha/page?x=1'), '/alpha/page?x=1', 'a path that is no file')
  proxiedTo(t, await http(nav.address, '/alpha/app.css', { method: 'POST' }), '/alpha/app.css', 'a POST')
  proxiedTo(t, await http(nav.address, '/alpha/program.exe'), '/alpha/program.exe', 'an extension server.static does not allow')
  proxiedTo(t, await http(nav.address, '/alpha/.env'), '/alpha/.env', 'a dotfile')
  proxiedTo(t, await http(nav.address, '/alpha/beta/inside.txt'), '/alpha/beta/inside.txt', 'a path routed to another tenant (the longer prefix) is not alpha\'s to serve')
})

test('a path that could name a file outside a tenant\'s public_dir is never served from it', async (t) => {
  const nav = await site(t)
  // Dot segments are resolved before routing: these name /secret.txt or /alpha/secret.txt, which no folder serves.
  for (const path of ['/alpha/../secret.txt', '/alpha/%2e%2e/secret.txt', '/alpha/%2E%2E/secret.txt', '/alpha/public/../secret.txt', '/alpha/./../alpha/secret.txt']) {
    const answer = await http(nav.address, path)
    t.not(answer.text, SECRET, `${path}: not the file`)
    t.ok(answer.status === 404 || answer.status === 200, `${path}: ${answer.status}`)
  }
  // Behind an encoded slash or a backslash: refused, or no static file (then the tenant's).
  for (const path of ['/alpha/..%2fsecret.txt', '/alpha/%2e%2e%2fsecret.txt', '/alpha/..%2f..%2fsecret.txt', '/alpha/..%5csecret.txt', '/alpha/..\\secret.txt', '/alpha/%252e%252e/secret.txt']) {
    const answer = await http(nav.address, path)
    t.not(answer.text, SECRET, `${path}: not the file (${answer.status})`)
    t.ok(answer.status === 400 || (answer.status === 200 && answer.headers['content-type'] === 'application/json'), `${path}: refused, or the tenant's answer (${answer.status})`)
  }
  proxiedTo(t, await http(nav.address, '/alpha/link.txt'), '/alpha/link.txt', 'a symbolic link out of the folder')
  proxiedTo(t, await http(nav.address, '/alpha/secret.txt'), '/alpha/secret.txt', 'the file beside the folder, by its own name')
})

test('with auth on, a tenant\'s own files need the password (its path\'s), where server.static.public_dir does not', async (t) => {
  const authorised = `Basic ${Buffer.from('ann:secret').toString('base64')}`
  const nav = await startSite(t, {
    tenants: [tenant('alpha', '/alpha', 'public_dir: alpha/public')],
    after: ['auth:', '  enabled: true', '  htpasswd: htpasswd', '  public_paths: ["/alpha/open/*"]']
  }, {
    files: {
      htpasswd: `ann:{SHA}${createHash('sha1').update('secret').digest('base64')}\n`,
      'alpha/public/report.txt': 'alpha report\n',
      'alpha/public/open/notice.txt': 'alpha notice\n',
      'public/shared.txt': 'server file\n'
    }
  })
  const refused = await http(nav.address, '/alpha/report.txt')
  t.equal(refused.status, 401, 'a tenant\'s file without the password')
  t.not(refused.text, 'alpha report\n')
  t.same([(await http(nav.address, '/alpha/report.txt', { headers: { authorization: authorised } })).text], ['alpha report\n'], 'with it')
  t.same([(await http(nav.address, '/alpha/open/notice.txt')).text], ['alpha notice\n'], 'a public path of the tenant: no password')
  t.same([(await http(nav.address, '/shared.txt')).text], ['server file\n'], 'server.static.public_dir: before authentication, as in the Go Navigator')
})
