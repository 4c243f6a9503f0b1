import { test } from 'tap'
import type { Test } from 'tap'
import { SECURE_OVER_HTTP_HINT } from '@navigator/sticky-sessions'
import { http, startSite, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// cookie_secure: true on a plain-HTTP local port (issue 16, item 4): the session seems not to stick, because clients
// drop a Secure cookie that came over http. Navigator says so once, with the fix, instead of leaving it to be guessed.

async function machine (t: Test, secure: boolean): Promise<Running> {
  return await startSite(t, {
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      `      cookie_secure: ${String(secure)}`,
      '      paths: ["/app/*"]'
    ],
    tenants: [tenant('app', '/app')]
  }, { env: { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'hint', FLY_REGION: 'ord' } })
}

test('a Secure cookie set over plain HTTP logs one hint that says what to change', async (t) => {
  const nav = await machine(t, true)
  for (let i = 0; i < 3; i++) {
    const answer = await http(nav.address, '/app/page')
    t.match(String(answer.headers['set-cookie']), /; Secure/, 'the cookie is Secure as configured')
  }
  await nav.waitForLog((line) => line.msg === SECURE_OVER_HTTP_HINT)
  t.equal(nav.logs.filter((line) => line.msg === SECURE_OVER_HTTP_HINT).length, 1, 'logged once, not per request')
  t.match(SECURE_OVER_HTTP_HINT, 'set cookie_secure: false')
})

test('no hint when the cookie is not Secure, nor when the request came through https', async (t) => {
  const plain = await machine(t, false)
  const secure = await machine(t, true)
  await http(plain.address, '/app/page')
  await http(secure.address, '/app/page', { headers: { 'x-forwarded-proto': 'https' } })
  await http(secure.address, '/app/page')
  // Both have served and logged their requests; the hint would have been written with the first answer.
  await plain.waitForLog((line) => line.msg === 'tenant ready')
  await secure.waitForLog((line) => line.msg === 'tenant ready')
  await new Promise((resolve) => setTimeout(resolve, 300)) // log lines leave in batches of up to 100 ms
  t.notOk(plain.logs.some((line) => line.msg === SECURE_OVER_HTTP_HINT), 'cookie_secure: false: no hint')
  t.notOk(secure.logs.some((line) => line.msg === SECURE_OVER_HTTP_HINT), 'the first cookie went out over https: no hint, then or later')
})
