import { symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { http, startSite, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// server.static's rules through the real navigator process: allowed_extensions, try_files (never leaving
// public_dir), normalize_trailing_slashes, and cache_control per path prefix with its 304s.

const SECRET = 'SECRET-outside-public-dir'

async function site (t: Parameters<typeof startSite>[0]): Promise<Running> {
  const navigator = await startSite(t, {
    server: [
      '  static:',
      '    public_dir: public',
      '    allowed_extensions: [css, .JS, html, png]',
      '    try_files: [index.html, .html]',
      '    normalize_trailing_slashes: true',
      '    cache_control:',
      '      default: 1h',
      '      overrides:',
      '        - path: /assets/',
      '          max_age: 1y',
      '          immutable: true',
      '        - path: /images/',
      '          max_age: 7d',
      '        - path: /docs/',
      '          max_age: 0'
    ],
    tenants: [tenant('app', '/')]
  }, {
    files: {
      'public/assets/app-4a860118.css': 'body { color: red }\n',
      'public/assets/app.js': 'console.log(1)\n',
      'public/images/logo.png': 'PNG',
      'public/about.html': '<h1>about</h1>\n',
      'public/docs/index.html': '<h1>docs</h1>\n',
      'public/docs/guide.html': '<h1>guide</h1>\n',
      'public/notes.txt': 'not an allowed extension\n',
      'public/.hidden.html': SECRET,
      'outside/secret.html': SECRET
    }
  })
  const dir = navigator.dir
  symlinkSync(join(dir, 'outside', 'secret.html'), join(dir, 'public', 'leak.html'))
  symlinkSync(join(dir, 'outside'), join(dir, 'public', 'linked'))
  writeFileSync(join(dir, 'outside', 'index.html'), SECRET)
  return navigator
}

/** True when the app answered (its JSON echo), not a static file. */
function fromApp (text: string): boolean {
  return text.startsWith('{') && text.includes('"url"')
}

test('a fingerprinted asset gets the immutable year; other prefixes their own max-age; the rest the default', async (t) => {
  const navigator = await site(t)
  const asset = await http(navigator.address, '/assets/app-4a860118.css')
  t.equal(asset.status, 200)
  t.equal(asset.text, 'body { color: red }\n')
  t.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable')
  t.equal((await http(navigator.address, '/images/logo.png')).headers['cache-control'], 'public, max-age=604800')
  t.equal((await http(navigator.address, '/docs/guide.html')).headers['cache-control'], 'public, max-age=0')
  t.equal((await http(navigator.address, '/about.html')).headers['cache-control'], 'public, max-age=3600')
  // An allowed extension in another case, with a leading dot in the configuration.
  t.equal((await http(navigator.address, '/assets/app.js')).headers['cache-control'], 'public, max-age=31536000, immutable')
})

test('ETag and Last-Modified still answer 304 under the cache rules', async (t) => {
  const navigator = await site(t)
  const first = await http(navigator.address, '/assets/app-4a860118.css')
  const etag = first.headers.etag as string
  const lastModified = first.headers['last-modified'] as string
  t.ok(etag)
  const byTag = await http(navigator.address, '/assets/app-4a860118.css', { headers: { 'if-none-match': etag } })
  t.equal(byTag.status, 304)
  t.equal(byTag.body.length, 0)
  t.equal(byTag.headers['cache-control'], 'public, max-age=31536000, immutable')
  const byDate = await http(navigator.address, '/assets/app-4a860118.css', { headers: { 'if-modified-since': lastModified } })
  t.equal(byDate.status, 304)
})

test('a file without an allowed extension goes on to the app', async (t) => {
  const navigator = await site(t)
  const answer = await http(navigator.address, '/notes.txt')
  t.equal(answer.status, 200)
  t.ok(fromApp(answer.text), answer.text.slice(0, 80))
  t.equal(JSON.parse(answer.text).url, '/notes.txt')
})

test('try_files finds /about.html for /about and a folder\'s index.html; a miss goes to the app', async (t) => {
  const navigator = await site(t)
  const about = await http(navigator.address, '/about')
  t.equal(about.status, 200)
  t.equal(about.text, '<h1>about</h1>\n')
  const guide = await http(navigator.address, '/docs/guide')
  t.equal(guide.text, '<h1>guide</h1>\n')
  const docs = await http(navigator.address, '/docs/')
  t.equal(docs.text, '<h1>docs</h1>\n')
  const missing = await http(navigator.address, '/nothing-here')
  t.ok(fromApp(missing.text))
})

test('try_files never leaves public_dir: a candidate that is a link outside, a dotfile, an escape', async (t) => {
  const navigator = await site(t)
  for (const path of ['/leak', '/leak.html', '/linked', '/linked/', '/linked/secret', '/.hidden', '/%2ehidden', '/docs/..%2f..%2foutside%2fsecret', '/.html']) {
    const answer = await http(navigator.address, path)
    t.notMatch(answer.text, SECRET, path)
  }
  // A link outside is no static file: the request goes on to the app.
  t.ok(fromApp((await http(navigator.address, '/leak')).text))
})

test('normalize_trailing_slashes redirects a folder to its slash form, the query kept', async (t) => {
  const navigator = await site(t)
  const answer = await http(navigator.address, '/docs?page=2')
  t.equal(answer.status, 301)
  t.equal(answer.headers.location, '/docs/?page=2')
  const head = await http(navigator.address, '/docs', { method: 'HEAD' })
  t.equal(head.status, 301)
  // A folder a browser would read as another host stays a path on this one.
  const doubled = await http(navigator.address, '//docs')
  t.not(doubled.headers.location?.startsWith('//'), true, String(doubled.headers.location))
})
