import { test } from 'tap'
import { http, startSite, tenant } from './helpers.js'

// maintenance.enabled through the real navigator: what would reach an app gets the maintenance page (503); static
// files, redirects, the health check and the Fly-Replay rules keep working.

const PAGE = '<!DOCTYPE html><title>Down for maintenance</title>\n'

test('maintenance mode answers 503 with its page for the apps, and keeps static files, redirects, the health check and replays', async (t) => {
  const navigator = await startSite(t, {
    server: ['  health_check: /up'],
    routes: [
      '  redirects:',
      '    - from: "^/old$"',
      '      to: /new',
      '  fly:',
      '    replay:',
      '      - path: "^/api/"',
      '        region: iad',
      '  reverse_proxies:',
      '    - prefix: /proxied/',
      '      target: http://127.0.0.1:1'
    ],
    tenants: [tenant('app', '/', 'start: eager')],
    after: ['maintenance:', '  enabled: true', '  page: /maintenance.html']
  }, { files: { 'public/maintenance.html': PAGE, 'public/style.css': 'body { color: red }\n' } })

  const app = await http(navigator.address, '/page')
  t.match(app, { status: 503, text: PAGE, headers: { 'content-type': 'text/html; charset=utf-8', 'retry-after': '5' } }, 'the app: the page from public_dir')
  t.match(await http(navigator.address, '/proxied/x'), { status: 503, text: PAGE }, 'a reverse proxy: the page')
  t.match(await http(navigator.address, '/style.css'), { status: 200, text: 'body { color: red }\n' }, 'a static file is served')
  t.match(await http(navigator.address, '/old'), { status: 302, headers: { location: '/new' } }, 'a redirect redirects')
  t.match(await http(navigator.address, '/up'), { status: 200, text: 'OK\n' }, 'the health check answers')
  t.match(await http(navigator.address, '/api/things'), { status: 307, headers: { 'fly-replay': /^region=iad/ } }, 'a replay rule replays')
})

test('without maintenance mode the same site serves the app', async (t) => {
  const navigator = await startSite(t, {
    tenants: [tenant('app', '/')],
    after: ['maintenance:', '  enabled: false', '  page: /maintenance.html']
  }, { files: { 'public/maintenance.html': PAGE } })
  const app = await http(navigator.address, '/page')
  t.equal(app.status, 200)
  t.equal(JSON.parse(app.text).url, '/page')
})
