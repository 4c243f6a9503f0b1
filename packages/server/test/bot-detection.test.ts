import { createRequire } from 'node:module'
import { test } from 'tap'
import { parseConfig } from '@navigator/config'
import { buildServer } from '../src/server.js'
import { handshake, http, startSite, tempDir, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// bot_detection through the real navigator: a bot (by the isbot package's list of User-Agents) is refused, let
// through, or let through to static files only, by the action of the server or of the tenant the request is routed
// to; a browser, or a client that sends no User-Agent, always passes; the health check is never refused.

const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

const FILES = {
  'public/file.txt': 'a static file\n',
  'shop-public/logo.txt': 'the shop\'s logo\n'
}

async function statuses (nav: Running, paths: string[], userAgent?: string, method = 'GET'): Promise<number[]> {
  const headers = userAgent === undefined ? undefined : { 'user-agent': userAgent }
  const out: number[] = []
  for (const path of paths) out.push((await http(nav.address, path, { method, headers })).status)
  return out
}

test('isbot is loaded only once a configuration enables bot detection, and the step is left out until then', async (t) => {
  const cache = createRequire(import.meta.url).cache
  const loaded = (): boolean => Object.keys(cache).some((file) => file.includes('/isbot/'))
  const options = { env: { LOG_LEVEL: 'silent' } }
  const off = await buildServer(parseConfig('server:\n  listen: "127.0.0.1:0"\n  bot_detection:\n    enabled: false\n', { dir: tempDir() }), options)
  t.teardown(async () => { await off.close() })
  t.notOk(off.pipeline.steps.some((step) => step.name === 'bot-detection'), 'off: no step')
  t.notOk(loaded(), 'off: the package is not loaded')
  const on = await buildServer(parseConfig([
    'server:', '  listen: "127.0.0.1:0"',
    'applications:', '  tenants:', '    - name: alpha', '      path: /alpha', '      bot_detection:', '        enabled: true'
  ].join('\n'), { dir: tempDir() }), options)
  t.teardown(async () => { await on.close() })
  t.ok(on.pipeline.steps.some((step) => step.name === 'bot-detection'), 'one tenant enables it: the step is in the list')
  t.ok(loaded(), 'and the package is loaded')
})

test('server-wide reject: a bot gets 403 for pages, files and WebSockets; the health check, browsers and tenants that say otherwise pass', async (t) => {
  const nav = await startSite(t, {
    server: ['  health_check: /up', '  bot_detection:', '    enabled: true', '    action: reject'],
    tenants: [
      tenant('alpha', '/alpha'),
      tenant('demo', '/demo', 'bot_detection:', '  enabled: true', '  action: ignore'),
      tenant('shop', '/shop', 'public_dir: shop-public', 'bot_detection:', '  enabled: true', '  action: static-only')
    ]
  }, { files: FILES, warm: ['/alpha/page', '/demo/page', '/shop/page'] })

  t.same(await statuses(nav, ['/alpha/page', '/file.txt', '/nowhere'], GOOGLEBOT), [403, 403, 403], 'a page, a static file, a path nothing serves: all 403')
  const refused = await http(nav.address, '/alpha/page', { headers: { 'user-agent': GOOGLEBOT } })
  t.match(refused, { status: 403, text: 'Forbidden\n', headers: { 'content-type': 'text/plain; charset=utf-8' } })
  t.same(await statuses(nav, ['/alpha/page'], GOOGLEBOT, 'POST'), [403], 'whatever the method')
  t.equal(await handshake(nav.address, '/alpha/cable', { 'user-agent': GOOGLEBOT }), 403, 'a WebSocket upgrade of a bot: 403, never relayed')
  t.match(await http(nav.address, '/up', { headers: { 'user-agent': GOOGLEBOT } }), { status: 200, text: 'OK\n' }, 'the health check answers bots too')

  t.same(await statuses(nav, ['/alpha/page', '/file.txt', '/demo/page', '/shop/page', '/shop/logo.txt'], BROWSER), [200, 200, 200, 200, 200], 'a browser reaches everything')
  t.same(await statuses(nav, ['/alpha/page', '/file.txt'], undefined), [200, 200], 'so does a client without a User-Agent')
  t.equal(await handshake(nav.address, '/alpha/cable', { 'user-agent': BROWSER }), 101, 'and a browser\'s WebSocket opens')

  const demo = await http(nav.address, '/demo/page', { headers: { 'user-agent': GOOGLEBOT } })
  t.equal(demo.status, 200, 'a tenant with action ignore: the bot reaches it')
  t.equal((JSON.parse(demo.text) as { headers: Record<string, string> }).headers['user-agent'], GOOGLEBOT, 'as it is')
  t.equal(await handshake(nav.address, '/demo/cable', { 'user-agent': GOOGLEBOT }), 101, 'its WebSockets too')

  t.match(await http(nav.address, '/shop/logo.txt', { headers: { 'user-agent': GOOGLEBOT } }), { status: 200, text: 'the shop\'s logo\n' }, 'a tenant with static-only: its static files are served to the bot')
  t.same(await statuses(nav, ['/shop/page', '/shop/missing.txt'], GOOGLEBOT), [403, 403], 'and nothing else')
  t.same(await statuses(nav, ['/shop/logo.txt'], GOOGLEBOT, 'POST'), [403], 'a POST to a file is no static request')
  t.equal(await handshake(nav.address, '/shop/cable', { 'user-agent': GOOGLEBOT }), 403)
})

test('server-wide static-only: a bot gets static files and 403 for the rest; a tenant can turn detection off for itself', async (t) => {
  const nav = await startSite(t, {
    server: ['  bot_detection:', '    enabled: true', '    action: static-only'],
    tenants: [
      tenant('alpha', '/alpha'),
      tenant('open', '/open', 'bot_detection:', '  enabled: false')
    ]
  }, { files: FILES, warm: ['/alpha/page', '/open/page'] })

  t.match(await http(nav.address, '/file.txt', { headers: { 'user-agent': GOOGLEBOT } }), { status: 200, text: 'a static file\n' })
  t.match(await http(nav.address, '/file.txt', { method: 'HEAD', headers: { 'user-agent': GOOGLEBOT } }), { status: 200, text: '' }, 'HEAD as well')
  t.same(await statuses(nav, ['/alpha/page', '/missing.txt', '/alpha/..%2ffile.txt'], GOOGLEBOT), [403, 403, 400], 'a page or a missing file: 403 (a hidden dot segment is refused before)')
  t.same(await statuses(nav, ['/alpha/page', '/missing.txt'], 'curl/8.5.0'), [403, 403], 'command-line clients count as bots, as isbot has it')
  t.equal(await handshake(nav.address, '/alpha/cable', { 'user-agent': GOOGLEBOT }), 403, 'an upgrade is never a static request')
  t.same(await statuses(nav, ['/open/page'], GOOGLEBOT), [200], 'a tenant with bot_detection.enabled false: bots pass')
  t.same(await statuses(nav, ['/alpha/page', '/missing.txt'], BROWSER), [200, 404], 'a browser: the page, and the 404 of a missing file')
})
