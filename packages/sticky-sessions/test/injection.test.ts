import { test } from 'tap'
import { createHmac } from 'node:crypto'
import fc from 'fast-check'
import { DEFAULT_COOKIE_NAME, STICKY_REPLAY_STATE } from '../src/index.js'
import { build, setCookies } from './helpers.js'

const OUR_COOKIE = /^_navigator_machine=m1; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/
const REPLAY = new RegExp(`^instance=[a-z0-9-]{1,64};state=${STICKY_REPLAY_STATE};timeout=10s;fallback=force_self$`)

const injections: Array<[string, string]> = [
  ['percent-encoded', 'm2%3Bapp%3Devil'],
  ['quoted', '"m2;app=evil"'],
  ['quoted id', '"m2"'],
  ['commas', 'm2,app=evil'],
  ['tabs', 'm2\tapp=evil'],
  ['upper case', 'M2'],
  ['5,000 characters', 'm'.repeat(5000)],
  ['dot-dot-slash', '../m2'],
  ['encoded CR/LF', 'm2%0D%0Aset-cookie:%20evil=1'],
  ['a signature where none is configured', `m2.${createHmac('sha256', 'k').update('m2').digest('base64url')}`],
  ['equals sign', 'm2=evil'],
  ['empty', '']
]

function headerValues (headers: Record<string, unknown>): string[] {
  return Object.values(headers).flatMap((value) => Array.isArray(value) ? value.map(String) : [String(value)])
}

test('cookie values that try to inject into fly-replay are reassigned to this Machine and echoed nowhere', async (t) => {
  const { app } = await build(t)
  for (const [name, value] of injections) {
    const res = await app.inject({ url: '/app', headers: { cookie: `${DEFAULT_COOKIE_NAME}=${value}` } })
    t.equal(res.statusCode, 200, `${name}: served here`)
    t.equal(res.headers['fly-replay'], undefined, `${name}: not replayed`)
    t.same(res.json().sticky, { machine: 'm1', action: 'serve' }, `${name}: reassigned`)
    const cookies = setCookies(res.headers)
    t.equal(cookies.length, 1, `${name}: one cookie`)
    t.match(cookies[0], OUR_COOKIE, `${name}: pinned to this Machine`)
    for (const header of headerValues(res.headers)) {
      t.notOk(header.includes('evil'), `${name}: nothing injected into ${header.slice(0, 40)}`)
      if (value.length > 2) t.notOk(header.includes(value), `${name}: the value is not echoed`)
    }
  }
})

// Cookies are separated by ";" with or without a space, so "m2;app=evil" is not one value: it is the cookie m2 (a
// valid Machine ID, honoured like any other) followed by a separate cookie "app" that is not ours. The attacker's text
// after the ";" is never part of our value, so it still reaches no header: the replay names m2 and nothing else.
test('a raw ";" in the cookie ends our value: the valid ID before it is followed, and nothing after it reaches a header', async (t) => {
  const { app } = await build(t)
  const res = await app.inject({ url: '/app', headers: { cookie: `${DEFAULT_COOKIE_NAME}=m2;app=evil` } })
  t.equal(res.statusCode, 307, 'replayed to the Machine the cookie names')
  t.match(String(res.headers['fly-replay']), REPLAY)
  t.ok(String(res.headers['fly-replay']).startsWith('instance=m2;'), 'to m2 exactly')
  t.equal(res.headers['set-cookie'], undefined, 'the cookie is left to the Machine that serves it')
  for (const header of headerValues(res.headers)) {
    t.notOk(header.includes('evil'), `nothing injected into ${header.slice(0, 40)}`)
    t.notOk(header.includes('app='), `no attacker cookie in ${header.slice(0, 40)}`)
  }
})

// Printable ASCII and tab: what an HTTP header may carry; weighted towards the characters of the grammar.
const cookieChar = fc.oneof(
  fc.constantFrom('m', '1', '2', '-', '.', ';', ' ', ',', '=', '"', '%', '\t', '/', 'A', '_'),
  fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code))
)

test('property: for any cookie string, every response header value matches its grammar', async (t) => {
  const { app } = await build(t, { discovery: { has: (id) => id !== 'gone' } })
  await fc.assert(fc.asyncProperty(fc.string({ unit: cookieChar, maxLength: 120 }), async (value) => {
    const res = await app.inject({ url: '/app', headers: { cookie: `other=1; ${DEFAULT_COOKIE_NAME}=${value}` } })
    const replay = res.headers['fly-replay']
    if (replay !== undefined) {
      if (!REPLAY.test(String(replay))) return false
      if (res.headers['set-cookie'] !== undefined) return false
      return res.statusCode === 307
    }
    const cookies = setCookies(res.headers)
    if (cookies.length !== 1 || !OUR_COOKIE.test(cookies[0])) return false
    // Short values can occur in our own constant headers by chance ("; Path"); longer ones must never be echoed.
    if (value.length > 12 && headerValues(res.headers).some((header) => header.includes(value))) return false
    return res.statusCode === 200
  }), { numRuns: 400 })
  t.pass('400 arbitrary cookie values produced only well-formed headers')
})
