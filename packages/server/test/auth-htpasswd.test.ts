import { test } from 'tap'
import { createHash } from 'node:crypto'
import bcrypt from 'bcryptjs'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HtpasswdFile, parseHtpasswd, SHA_CRYPT_MAX_WAITING, verifyPassword } from '../src/htpasswd.js'
import { compilePublicPath } from '../src/steps/auth.js'

// The hash kinds the end-to-end test (auth.test.ts) does not go through, with hashes made by other tools:
// `openssl passwd -1 -salt abcdefgh secret`, `openssl passwd -apr1 -salt gnL/9j47 secret`, `openssl passwd -5
// -salt saltsalt secret`, `openssl passwd -6 -salt saltsalt secret` and Python's crypt with 10000 rounds.

const salt = Buffer.from('saltsalt')
const ssha = '{SSHA}' + Buffer.concat([createHash('sha1').update('secret').update(salt).digest(), salt]).toString('base64')

test('each supported kind verifies its password and only it; an unknown prefix is refused, never read as plain text', async (t) => {
  const { users, unsupported } = parseHtpasswd([
    '# comment',
    '',
    `bcrypt2a:${bcrypt.hashSync('secret', 4).replace(/^\$2b\$/, '$2a$')}`,
    'md5crypt:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1',
    'apr1:$apr1$gnL/9j47$ZqwNZ6pjc0dgI8wcaMDQv0',
    `ssha:${ssha}`,
    'plain:secret',
    'sha256:$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA',
    'sha512:$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1',
    'sha512rounds:$6$rounds=10000$saltsalt$WowrPBpEDVlCoruBosYlrZycTCx3//TyDHYqEhX9DUHHt0XTztUqzQDDUuvUGRA8aUe9p55hcAxeGcu58sm3u.',
    'yescrypt:$y$j9T$abc$def',
    'windows:{PLAIN}x\r'
  ].join('\n'))
  t.same([...users.keys()], ['bcrypt2a', 'md5crypt', 'apr1', 'ssha', 'plain', 'sha256', 'sha512', 'sha512rounds'])
  t.same(unsupported, [{ line: 11, user: 'yescrypt' }, { line: 12, user: 'windows' }])
  for (const [user, entry] of users) {
    t.equal(await verifyPassword(entry, 'secret'), true, `${user}: the right password`)
    t.equal(await verifyPassword(entry, 'secreT'), false, `${user}: a wrong one`)
  }
})

test('public path forms match what they say', async (t) => {
  const cases: Array<[string, string[], string[]]> = [
    ['/assets/*', ['/assets/', '/assets/a.js', '/assets/a/b.js'], ['/assets', '/assetsX', '/x/assets/a.js']],
    ['/assets/', ['/assets/', '/assets/a/b.js'], ['/assets', '/assetsX/a']],
    ['*.css', ['/a.css', '/x/y/a.css'], ['/a.css/x', '/a.cssx', '/acss']],
    ['/api/v?/public/*', ['/api/v1/public/x'], ['/api/v1/x/public/y', '/api/v12/public/x']],
    ['/favicon.ico', ['/favicon.ico'], ['/favicon.ico/x', '/x/favicon.ico', '/faviconXico']]
  ]
  for (const [pattern, open, closed] of cases) {
    const regex = compilePublicPath(pattern)
    for (const path of open) t.ok(regex.test(path), `${pattern} opens ${path}`)
    for (const path of closed) t.notOk(regex.test(path), `${pattern} does not open ${path}`)
  }
})

test('an unknown user costs a bcrypt check too, so timing does not tell which names exist', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-htpasswd-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'htpasswd')
  writeFileSync(file, `alice:${bcrypt.hashSync('secret', 6)}\n`)
  const silent = { info () {}, warn () {}, error () {} } as unknown as ConstructorParameters<typeof HtpasswdFile>[1]
  const htpasswd = new HtpasswdFile(file, silent)
  await htpasswd.decoyMade
  const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`
  const unknown = htpasswd.check(basic('mallory:secret'))
  t.type(unknown, Promise, 'an unknown name goes through bcrypt, as a known one does')
  t.equal(await unknown, false)
  t.equal(await htpasswd.check(basic('alice:wrong')), false)
  t.equal(await htpasswd.check(basic('alice:secret')), true)

  writeFileSync(file, 'plain:secret\n')
  const noBcrypt = new HtpasswdFile(file, silent)
  await noBcrypt.decoyMade
  t.equal(noBcrypt.check(basic('mallory:secret')), false, 'without bcrypt users there is no slow check to match')
})

test('SHA-crypt verifications take turns, with the event loop free between them, and at most 64 wait', async (t) => {
  const { users } = parseHtpasswd('fast:$5$rounds=1000$saltsalt$eKLZU9t9OoPWrqOQsoTIKG0aYkZ5rGOoOQhiIvoSWX2\n')
  const entry = users.get('fast') as NonNullable<ReturnType<typeof users.get>>
  t.equal(await verifyPassword(entry, 'secret'), true, 'the right password (Python crypt, 1000 rounds)')
  let ticks = 0
  const ticker = setInterval(() => { ticks++ }, 0)
  const five = await Promise.all(Array.from({ length: 5 }, async () => await verifyPassword(entry, 'wrong')))
  clearInterval(ticker)
  t.same(five, [false, false, false, false, false])
  t.ok(ticks >= 3, `timers ran between the verifications (${ticks} ticks; back to back they would get none)`)
  const many = await Promise.all(Array.from({ length: SHA_CRYPT_MAX_WAITING + 6 }, async () => await verifyPassword(entry, 'secret')))
  t.equal(many.filter((verified) => verified).length, SHA_CRYPT_MAX_WAITING, 'those beyond the waiting limit are refused without a hash')
})
