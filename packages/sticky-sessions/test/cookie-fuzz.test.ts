import { test } from 'tap'
import fc from 'fast-check'
import { COOKIE_REJECTIONS, createCookieCodec, createCookieReader } from '../src/cookie.js'

// Hostile input (issue 7): properties of the sticky cookie codec and reader over any string a client can send.
// The value we hand out is always inside RFC 6265's cookie-octet grammar; decoding accepts a value only when it is
// exactly what one of the configured secrets (or none) would have written, so nothing is "repaired" on the way in.

/** RFC 6265 cookie-value without quotes: visible ASCII except space, '"', ',', ';' and '\'. */
const COOKIE_OCTETS = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/
const UNSIGNED = /^[a-z0-9-]{1,64}$/
const SIGNED = /^[a-z0-9-]{1,64}\.[A-Za-z0-9_-]{43}$/

const machineId = fc.stringMatching(/^[a-z0-9-]{1,64}$/)
const secret = fc.string({ minLength: 1, maxLength: 40 })
const secrets = fc.array(secret, { minLength: 0, maxLength: 3 })

/** Strings near valid values: a valid value with one edit, in every shape a client could bend it into. */
function nearValues (value: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(fc.nat(value.length), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })).map(([at, text]) => value.slice(0, at) + text + value.slice(at)),
    fc.tuple(fc.nat(Math.max(0, value.length - 1)), fc.integer({ min: 1, max: 3 })).map(([at, n]) => value.slice(0, at) + value.slice(at + n)),
    fc.nat(Math.max(0, value.length - 1)).map((at) => value.slice(0, at) + value[at].toUpperCase() + value.slice(at + 1)),
    fc.constantFrom(`"${value}"`, ` ${value}`, `${value} `, `${value};`, `${value},x`, encodeURIComponent(value).replace(/-/g, '%2D'),
      `${value}.`, `.${value}`, `${value}\0`, `${value}\r\n`, value + value)
  )
}

test('an encoded Machine ID is cookie-octets only, in the unsigned or signed shape, and decodes back to the same ID', async (t) => {
  fc.assert(fc.property(secrets, machineId, (keys, id) => {
    const codec = createCookieCodec(keys)
    const value = codec.encode(id)
    return COOKIE_OCTETS.test(value) && (keys.length === 0 ? UNSIGNED : SIGNED).test(value) && codec.decode(value) === id
  }), { numRuns: 3000, seed: 7 })
  t.pass('3000 encodings')
})

/** Whether `value` is what the codec for `keys` accepts: rejected with a known reason, or exactly a canonical value. */
function acceptsOnlyCanonical (keys: string[], value: string): boolean {
  const codec = createCookieCodec(keys)
  const id = codec.decode(value)
  if (id === null) return COOKIE_REJECTIONS.includes(codec.rejection(value))
  const writers = keys.length === 0 ? [createCookieCodec()] : keys.map((key) => createCookieCodec([key]))
  return writers.some((writer) => writer.encode(id) === value)
}

test('decode accepts a value only when one of the secrets (or none) would have written exactly that value', async (t) => {
  const anyValue = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 120 }),
    fc.tuple(machineId, fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)).map(([id, signature]) => `${id}.${signature}`),
    machineId
  )
  fc.assert(fc.property(secrets, anyValue, acceptsOnlyCanonical), { numRuns: 5000, seed: 7 })
  t.pass('5000 values')
})

test('a valid value bent by one edit (case, quotes, spaces, separators, percent-encoding, NUL, CR/LF) is rejected unless canonical', async (t) => {
  let rejected = 0
  const cases = fc.tuple(secrets, machineId).chain(([keys, id]) =>
    fc.tuple(fc.constant(keys), nearValues(createCookieCodec(keys).encode(id))))
  fc.assert(fc.property(cases, ([keys, bent]) => {
    if (createCookieCodec(keys).decode(bent) === null) rejected++
    return acceptsOnlyCanonical(keys, bent)
  }), { numRuns: 5000, seed: 7 })
  // An edit inside an unsigned ID can give another valid ID; most edits must not survive.
  t.ok(rejected > 3000, `${rejected} of 5000 bent values rejected`)
})

test('the cookie reader never throws and agrees with splitting the header on ";" and skipping spaces and tabs', async (t) => {
  // Cookie names are tokens: never a ";", "=" or leading whitespace (the plugin validates the configured name).
  const name = fc.oneof(fc.constantFrom('_navigator_machine', 'a', 'x-y'), fc.string({ minLength: 1, maxLength: 10 }))
    .filter((text) => !/[;=\s]/.test(text))
  const header = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.array(fc.tuple(fc.constantFrom('_navigator_machine', 'a', ' a', 'A', ''), fc.string({ maxLength: 20 })), { maxLength: 10 })
      .chain((pairs) => fc.constantFrom('; ', ';', ', ', ' ; ', ';\t').map((sep) => pairs.map(([k, v]) => `${k}=${v}`).join(sep)))
  )
  fc.assert(fc.property(name, header, (cookieName, text) => {
    const value = createCookieReader(cookieName)(text)
    const piece = text.split(';').map((part) => part.replace(/^[ \t]*/, '')).find((part) => part.startsWith(`${cookieName}=`))
    const expected = piece === undefined ? undefined : piece.slice(cookieName.length + 1)
    return value === expected && (value === undefined || !value.includes(';'))
  }), { numRuns: 5000, seed: 7 })
  t.pass('5000 headers')
})
