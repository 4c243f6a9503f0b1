import { test } from 'tap'
import { http, startSite, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// Dot segments (issue 18, item 7), against the real navigator process: every step routes on the path with its dot
// segments resolved, as nginx does, and the app is asked for that same path, so `/app/../other/x` can never be
// routed to one tenant while another reads it; a dot segment hidden behind an encoded slash is refused.

async function site (t: Parameters<typeof startSite>[0]): Promise<Running> {
  return await startSite(t, {
    tenants: [
      tenant('app', '/app', 'start: eager', 'env: { TENANT_GREETING: app }'),
      tenant('other', '/other', 'start: eager', 'env: { TENANT_GREETING: other }')
    ]
  }, { warm: ['/app/warm-up', '/other/warm-up'] })
}

/** A GET with `target` exactly as given (the helper sends the path as it is, no normalisation). */
async function get (navigator: Running, target: string): Promise<{ status: number, body: string }> {
  const answer = await http(navigator.address, target)
  return { status: answer.status, body: answer.text }
}

function seenBy (body: string): { tenant: string, url: string } {
  const seen = JSON.parse(body) as { url: string, env: { TENANT_GREETING: string } }
  return { tenant: seen.env.TENANT_GREETING, url: seen.url }
}

test('dot segments are resolved before any step routes, and the app is asked for the resolved path', async (t) => {
  const navigator = await site(t)
  const routed: Array<[string, string, string]> = [
    ['/app/../other/x', 'other', '/other/x'],
    ['/app/%2e%2E/other/x?q=1', 'other', '/other/x?q=1'],
    ['/app/./x', 'app', '/app/x'],
    ['/other/a/b/../../../app/y', 'app', '/app/y'],
    ['/app/.well-known/z', 'app', '/app/.well-known/z']
  ]
  for (const [target, tenantName, url] of routed) {
    const answer = await get(navigator, target)
    t.equal(answer.status, 200, `${target}: served`)
    t.same(seenBy(answer.body), { tenant: tenantName, url }, `${target}: by ${tenantName}, which is asked for ${url}`)
  }
  t.equal((await get(navigator, '/app/../nowhere')).status, 404, '/app/../nowhere: resolved to /nowhere, served by no one')
  for (const target of ['/app/..%2fother/x', '/app/x%2F..%2Fother', '/app/%2e%2e%5cother']) {
    t.equal((await get(navigator, target)).status, 400, `${target}: a dot segment behind an encoded slash is refused`)
  }
})
