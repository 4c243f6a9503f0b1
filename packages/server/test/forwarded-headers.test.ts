import { test } from 'tap'
import { http, siteConfig, startNavigator, tempDir, tenant } from './helpers.js'

// X-Forwarded-* are trusted only on Fly (FLY_MACHINE_ID set), where every peer is Fly's proxy or a Machine on the
// private network; anywhere else a client could forge them, so the tenant gets this connection's own values.

async function tenantConfig (): Promise<string> {
  return tempDir({
    'navigator.yml': await siteConfig({ applications: ['  startup_timeout: 20s'], tenants: [tenant('alpha', '/alpha')] })
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
