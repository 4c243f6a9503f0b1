import { test } from 'tap'
import { createHash } from 'node:crypto'
import { http, startSite, tenant } from './helpers.js'

// server.health_check in the Go Navigator's object form, through the real navigator: with a response Navigator
// answers it itself; without one the check goes to the tenant whose path holds it, before auth.

const HTPASSWD = `ann:{SHA}${createHash('sha1').update('secret').digest('base64')}\n`

test('with a response, Navigator answers the health check with its status, body and headers', async (t) => {
  const navigator = await startSite(t, {
    server: [
      '  health_check:',
      '    path: /healthz',
      '    response:',
      '      status: 203',
      '      body: alive',
      '      headers:',
      '        Content-Type: text/plain',
      '        X-Health: checked'
    ],
    tenants: [tenant('app', '/')]
  })
  const answer = await http(navigator.address, '/healthz?probe=1')
  t.match(answer, { status: 203, text: 'alive', headers: { 'content-type': 'text/plain', 'x-health': 'checked' } })
  t.notOk(navigator.logs.some((line) => line.msg === 'tenant ready' || line.msg === 'process started'), 'no tenant was started for it')
  const app = await http(navigator.address, '/healthz/more')
  t.equal(JSON.parse(app.text).url, '/healthz/more', 'a path below it is the app\'s')
})

test('without a response, the health check is proxied to the tenant whose path holds it, before auth', async (t) => {
  const navigator = await startSite(t, {
    server: ['  health_check:', '    path: /app/up'],
    tenants: [tenant('app', '/app'), tenant('other', '/')],
    after: ['auth:', '  enabled: true', '  htpasswd: htpasswd']
  }, { files: { htpasswd: HTPASSWD } })
  const check = await http(navigator.address, '/app/up?probe=1')
  t.equal(check.status, 200, 'no password asked of the probe')
  const seen = JSON.parse(check.text) as { url: string, port: number }
  t.equal(seen.url, '/app/up?probe=1', 'the tenant of /app answered it')
  t.equal((await http(navigator.address, '/app/page')).status, 401, 'any other path of the tenant asks for the password')
})

test('without a response and no tenant whose path holds it, the check goes on like any request', async (t) => {
  const navigator = await startSite(t, {
    server: ['  health_check:', '    path: /up'],
    tenants: [tenant('app', '/app')]
  })
  const check = await http(navigator.address, '/up')
  t.equal(check.status, 404)
})
