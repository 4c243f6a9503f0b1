import { test } from 'tap'
import { createHash } from 'node:crypto'
import { http, startSite, tenant } from './helpers.js'

// The status page behind auth, through the real `navigator` process: with `auth` on (and the page not among its
// public paths) a request through Fly's edge is asked for the password and, with it, gets the page; without
// `auth`, or with the page public, only the allowed peers do, as before.

const HTPASSWD = `admin:{SHA}${createHash('sha1').update('secret').digest('base64')}\n`
const PROXIED = { 'fly-client-ip': '203.0.113.9' }
const RIGHT = `Basic ${Buffer.from('admin:secret').toString('base64')}`
const WRONG = `Basic ${Buffer.from('admin:guess').toString('base64')}`
const ENV = { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'status-auth', FLY_REGION: 'ord' }

function tenantRequests (text: string): number {
  return text.split('\n')
    .filter((line) => line.startsWith('navigator_upstream_response_seconds_count{'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
}

test('with auth on, a proxied request for the status page gets 401 without the password and the page with it', async (t) => {
  const navigator = await startSite(t, {
    server: ['  metrics: {}', '  status: {}'],
    tenants: [tenant('everything', '/', 'start: eager')],
    after: ['auth:', '  enabled: true', '  realm: Operators', '  htpasswd: htpasswd', '  public_paths: ["/pub/*"]']
  }, { env: ENV, files: { htpasswd: HTPASSWD } })
  const { address } = navigator

  const refused = await http(address, '/navigator/status', { headers: PROXIED })
  t.equal(refused.status, 401, 'through the edge, no password: 401')
  t.equal(refused.headers['www-authenticate'], 'Basic realm="Operators"', 'asking for auth\'s realm')
  t.equal((await http(address, '/navigator/status', { headers: { ...PROXIED, authorization: WRONG } })).status, 401, 'a wrong password: 401')
  t.equal((await http(address, '/navigator/status.json', { headers: PROXIED })).status, 401, 'the JSON too')

  const page = await http(address, '/navigator/status', { headers: { ...PROXIED, authorization: RIGHT } })
  t.equal(page.status, 200, 'through the edge, with the password: the page')
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.text, /<title>[^<]*m1/, 'of this Machine')
  const json = await http(address, '/navigator/status.json', { headers: { ...PROXIED, authorization: RIGHT } })
  t.equal(json.status, 200, 'and its JSON')
  t.equal((JSON.parse(json.text) as { machine: { id: string } }).machine.id, 'm1')

  t.equal((await http(address, '/navigator/status')).status, 200, 'an allowed peer asking straight needs no password, as before')
  t.match(await http(address, '/navigator/status', { method: 'POST', headers: { ...PROXIED, authorization: RIGHT } }), { status: 404, text: 'Not Found\n' }, 'a POST, even with the password: 404')
  t.match(await http(address, '/metrics', { headers: { ...PROXIED, authorization: RIGHT } }), { status: 404, text: 'Not Found\n' }, 'the metrics stay loopback-only, password or not')
  t.equal(tenantRequests((await http(address, '/metrics')).text), 0, 'no request for the page reached the app')
})

test('without auth, a proxied request for the status page gets 404, credentials or not', async (t) => {
  const navigator = await startSite(t, {
    server: ['  status: {}'],
    tenants: [tenant('everything', '/', 'start: eager')]
  }, { env: ENV })
  t.match(await http(navigator.address, '/navigator/status', { headers: PROXIED }), { status: 404, text: 'Not Found\n' })
  t.match(await http(navigator.address, '/navigator/status', { headers: { ...PROXIED, authorization: RIGHT } }), { status: 404, text: 'Not Found\n' })
  t.equal((await http(navigator.address, '/navigator/status')).status, 200, 'an allowed peer still sees it')
})

test('with the status page among auth\'s public paths, only the allowed peers see it: a proxied request gets 404', async (t) => {
  const navigator = await startSite(t, {
    server: ['  status: {}'],
    tenants: [tenant('everything', '/', 'start: eager')],
    after: ['auth:', '  enabled: true', '  htpasswd: htpasswd', '  public_paths: ["/navigator/*"]']
  }, { env: ENV, files: { htpasswd: HTPASSWD } })
  t.match(await http(navigator.address, '/navigator/status', { headers: PROXIED }), { status: 404, text: 'Not Found\n' })
  t.match(await http(navigator.address, '/navigator/status', { headers: { ...PROXIED, authorization: RIGHT } }), { status: 404, text: 'Not Found\n' }, 'a password does not open a public path')
  t.equal((await http(navigator.address, '/navigator/status')).status, 200, 'an allowed peer sees it')
})
