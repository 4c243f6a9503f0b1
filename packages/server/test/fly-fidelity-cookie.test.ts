import { test } from 'tap'
import { join } from 'node:path'
import { runCli, tempDir } from './helpers.js'
import { COOKIE, send, startMachines, stickyCookie } from './fly-fidelity-helpers.js'

// The cookie's attributes through the real navigator: a session cookie (cookie_max_age: 0), a permanent one whose
// Max-Age is cookie_max_age, Domain and Partitioned; and the combinations browsers refuse, which `navigator --check`
// reports with file:line:column and what to write instead (exit status 2).

test('cookie_max_age 0 is a session cookie; otherwise Max-Age is cookie_max_age; Domain and Partitioned as configured', async (t) => {
  const { m1, m2, m3 } = await startMachines(t, ['m1', 'm2', 'm3'], {
    m1: { sticky: ['cookie_max_age: 0'] },
    m2: { sticky: ['cookie_max_age: 36h'] },
    m3: { sticky: ['cookie_domain: example.com', 'cookie_partitioned: true', 'cookie_secure: true', 'cookie_samesite: None', 'cookie_max_age: 90m'] }
  })
  const session = stickyCookie(await send(m1.address, '/app/page'))
  t.equal(session, `${COOKIE}=m1; Path=/; HttpOnly; SameSite=Lax`, 'a session cookie')
  t.notMatch(session, /max-age|expires/i, 'no Max-Age, no Expires: the browser forgets it when it closes')

  const permanent = stickyCookie(await send(m2.address, '/app/page'))
  t.equal(permanent, `${COOKIE}=m2; Max-Age=129600; Path=/; HttpOnly; SameSite=Lax`, 'Max-Age is 36h in seconds')
  const renewed = stickyCookie(await send(m2.address, '/app/page', { headers: { cookie: `${COOKIE}=m2` } }))
  t.equal(renewed, permanent, 'and is set again on every visit, so it slides')

  const partitioned = stickyCookie(await send(m3.address, '/app/page'))
  t.equal(partitioned, `${COOKIE}=m3; Max-Age=5400; Domain=example.com; Path=/; HttpOnly; Secure; Partitioned; SameSite=None`)
})

test('navigator --check: SameSite=None without Secure, and Partitioned without Secure and SameSite=None, exit 2 at their positions', async (t) => {
  const dir = tempDir({
    'navigator.yml': [
      'routes:', //                        1
      '  fly:', //                         2
      '    sticky_sessions:', //           3
      '      enabled: true', //            4
      '      cookie_samesite: None', //    5
      '      cookie_partitioned: true', // 6
      '      cookie_max_age: 250ms', //    7
      '      cookie_domain: "a b"', //     8
      ''
    ].join('\n')
  })
  const file = join(dir, 'navigator.yml')
  const { code, stderr } = await runCli(['--check', file])
  t.equal(code, 2)
  const lines = stderr.trim().split('\n')
  t.equal(lines.length, 4, stderr)
  t.match(lines[0], `${file}:5:24: routes.fly.sticky_sessions.cookie_samesite: SameSite=None needs \`cookie_secure: true\``)
  t.match(lines[0], 'add `cookie_secure: true`, or write `cookie_samesite: Lax`')
  t.match(lines[1], `${file}:6:27: routes.fly.sticky_sessions.cookie_partitioned: a Partitioned cookie needs Secure and SameSite=None`)
  t.match(lines[1], 'add `cookie_secure: true`, or remove `cookie_partitioned`')
  t.match(lines[2], `${file}:7:23: routes.fly.sticky_sessions.cookie_max_age: must be 0 (a session cookie) or at least 1s`)
  t.match(lines[3], `${file}:8:22: routes.fly.sticky_sessions.cookie_domain:`)

  const fixed = tempDir({ 'navigator.yml': 'routes:\n  fly:\n    sticky_sessions:\n      cookie_samesite: None\n      cookie_secure: true\n      cookie_partitioned: true\n      cookie_max_age: 0\n' })
  const ok = await runCli(['--check', join(fixed, 'navigator.yml')])
  t.equal(ok.code, 0, ok.stderr)
})
