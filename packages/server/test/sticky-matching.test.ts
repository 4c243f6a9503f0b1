import { test } from 'tap'
import { freePort, http, startSite, tenant } from './helpers.js'

// Two review fixes, through the real navigator: cookies joined with a bare ";" (as some HTTP clients send them)
// are read, and sticky paths are matched on the percent-decoded path (Rails reads /%61pp/x as /app/x).

const COOKIE = '_navigator_machine'

test('a cookie after a bare ";" still pins the request, and a percent-encoded sticky path is sticky', async (t) => {
  const site = await startSite(t, {
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*"]',
      '      peers:',
      '        m1: "http://127.0.0.1:1"',
      `        m2: "http://127.0.0.1:${await freePort()}"`
    ],
    tenants: [tenant('app', '/app', 'start: eager')]
  }, { env: { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'matching' }, warm: ['/app/warm-up'] })

  const joined = await http(site.address, '/app/page', { headers: { cookie: `a=b;${COOKIE}=m2` } })
  t.equal(joined.status, 307, 'the cookie for m2 is found and the request replayed')
  t.match(joined.headers['fly-replay'], /^instance=m2;/)

  const encoded = await http(site.address, '/%61pp/page')
  const cookies = encoded.headers['set-cookie'] ?? []
  t.ok(cookies.some((line) => line.startsWith(`${COOKIE}=m1;`)), 'the decoded path /app/page is sticky: the cookie is set')

  const encodedOther = await http(site.address, '/%61pp/page', { headers: { cookie: `${COOKIE}=m2` } })
  t.equal(encodedOther.status, 307, 'and a cookie for another Machine is replayed there too')
})
