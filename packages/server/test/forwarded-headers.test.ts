import { join } from 'node:path'
import { test } from 'tap'
import { FIXTURES, freePort, http, startNavigator, tempDir } from './helpers.js'

// X-Forwarded-* are trusted only on Fly (FLY_MACHINE_ID set), where every peer is Fly's proxy or a Machine on the
// private network; anywhere else a client could forge them, so the tenant gets this connection's own values.

const TENANT_APP = join(FIXTURES, 'tenant.mjs')

async function tenantConfig (): Promise<string> {
  const startPort = await freePort()
  return tempDir({
    'navigator.yml': [
      'server:',
      '  listen: "127.0.0.1:0"',
      'applications:',
      '  command: node',
      `  args: [${JSON.stringify(TENANT_APP)}]`,
      `  start_port: ${startPort}`,
      '  startup_timeout: 20s',
      '  tenants:',
      '    - name: alpha',
      '      path: /alpha',
      ''
    ].join('\n')
  })
}

const FORGED = {
  host: 'tenant.test',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'https',
  'x-forwarded-for': '203.0.113.9'
}

interface TenantView { headers: Record<string, string> }

test('off Fly, forwarded headers a client sends are replaced by the connection\'s own values before reaching the tenant', async (t) => {
  const nav = await startNavigator(t, await tenantConfig(), { FLY_MACHINE_ID: '' })
  const answer = await http(nav.address, '/alpha/page', { headers: FORGED })
  t.equal(answer.status, 200, answer.text)
  const seen = (JSON.parse(answer.text) as TenantView).headers
  t.equal(seen['x-forwarded-host'], 'tenant.test', 'the Host header, not the forged X-Forwarded-Host')
  t.equal(seen['x-forwarded-proto'], 'http', 'the connection\'s scheme, not the forged one')
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'only the socket\'s address: the forged hop is dropped')
  t.equal(seen.host, 'tenant.test')
})

test('on Fly, forwarded headers from the edge pass through to the tenant and the peer is appended to X-Forwarded-For', async (t) => {
  const nav = await startNavigator(t, await tenantConfig(), { FLY_MACHINE_ID: 'm1abc', FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' })
  const answer = await http(nav.address, '/alpha/page', { headers: FORGED })
  t.equal(answer.status, 200, answer.text)
  const seen = (JSON.parse(answer.text) as TenantView).headers
  t.equal(seen['x-forwarded-host'], 'evil.example', 'the edge\'s host is what the app must see')
  t.equal(seen['x-forwarded-proto'], 'https', 'the edge terminated TLS')
  t.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
})
