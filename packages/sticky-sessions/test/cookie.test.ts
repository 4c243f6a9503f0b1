import { test } from 'tap'
import { createHmac } from 'node:crypto'
import { createCookieCodec, createCookieReader } from '../src/index.js'

const sig = (secret: string, id: string): string => createHmac('sha256', secret).update(id).digest('base64url')

test('an unsigned cookie is exactly a Machine ID', async (t) => {
  const codec = createCookieCodec()
  t.equal(codec.encode('m1'), 'm1')
  t.equal(codec.decode('m1'), 'm1')
  t.equal(codec.decode('3d8d9930be6e89'), '3d8d9930be6e89')
  for (const bad of ['M1', 'm1 ', ' m1', '"m1"', 'm1;app=evil', 'm%31', '', 'a'.repeat(65), '../m1', 'm1\t']) {
    t.equal(codec.decode(bad), null, JSON.stringify(bad))
    t.equal(codec.rejection(bad), 'malformed', JSON.stringify(bad))
  }
  t.equal(codec.rejection(`m1.${sig('k', 'm1')}`), 'signature-not-configured')
})

test('a signed cookie is <id>.<base64url HMAC-SHA256> and verifies with constant-time comparison', async (t) => {
  const codec = createCookieCodec(['k1'])
  const value = codec.encode('m2')
  t.equal(value, `m2.${sig('k1', 'm2')}`)
  t.equal(codec.decode(value), 'm2')
  t.equal(codec.decode('m2'), null)
  t.equal(codec.rejection('m2'), 'signature-missing')
  const tampered = `m3.${sig('k1', 'm2')}`
  t.equal(codec.decode(tampered), null)
  t.equal(codec.rejection(tampered), 'signature-invalid')
  t.equal(codec.decode(`m2.${sig('other', 'm2')}`), null)
  t.equal(codec.rejection('m2.short'), 'malformed')
  t.equal(codec.rejection('m2.' + 'a'.repeat(200)), 'malformed')
})

test('with a list of secrets the first signs and every one verifies (rotation)', async (t) => {
  const rotated = createCookieCodec(['new', 'old'])
  t.equal(rotated.encode('m2'), `m2.${sig('new', 'm2')}`)
  t.equal(rotated.decode(`m2.${sig('old', 'm2')}`), 'm2')
  t.equal(rotated.decode(`m2.${sig('new', 'm2')}`), 'm2')
  t.equal(rotated.decode(`m2.${sig('retired', 'm2')}`), null)
})

test('the cookie reader reads only the named cookie, exactly as sent, split on ";" and optional whitespace', async (t) => {
  const read = createCookieReader('_navigator_machine')
  t.equal(read('_navigator_machine=m1'), 'm1')
  t.equal(read('a=1; _navigator_machine=m2; b=3'), 'm2')
  t.equal(read('x_navigator_machine=m9; _navigator_machine=m2'), 'm2', 'a longer name is not ours')
  t.equal(read('a=_navigator_machine=m9'), undefined, 'inside another value is not ours')
  t.equal(read('a=1 _navigator_machine=m9'), undefined)
  t.equal(read('a=b;_navigator_machine=m2'), 'm2', 'a bare ";" separates cookies, as some clients send them')
  t.equal(read('a=b;\t _navigator_machine=m2'), 'm2', 'spaces and tabs after ";" are skipped')
  t.equal(read('  _navigator_machine=m2'), 'm2', 'leading whitespace is skipped')
  t.equal(read('_navigator_machine=m2;app=evil'), 'm2', 'a bare ";" ends the value: the rest is another cookie')
  t.equal(read('a=1;x_navigator_machine=m9;_navigator_machine=m3'), 'm3', 'a longer name is not ours without a space either')
  t.equal(read('_navigator_machine="m2"'), '"m2"', 'quotes are kept, so the codec rejects them')
  t.equal(read('_navigator_machine=m2 ; b=1'), 'm2 ', 'nothing is trimmed')
  t.equal(read('_navigator_machine=m1; _navigator_machine=m2'), 'm1', 'the first (most specific path) wins')
  t.equal(read('a=1'), undefined)
  t.equal(read(''), undefined)
})
