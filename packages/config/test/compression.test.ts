import { test } from 'tap'
import { parseConfig } from '../src/index.js'
import { problemLines as problems } from './helpers.js'

// server.disable_compression: proxied responses are compressed unless it is true.

const OPTIONS = { dir: '/srv/app', env: {} }

test('compression is on unless server.disable_compression is true', async (t) => {
  t.equal(parseConfig('', OPTIONS).server.disableCompression, false, 'absent: compressed')
  t.equal(parseConfig('server:\n  disable_compression: false\n', OPTIONS).server.disableCompression, false)
  t.equal(parseConfig('server:\n  disable_compression: true\n', OPTIONS).server.disableCompression, true)
})

test('a disable_compression that is not a boolean is a problem at its key', async (t) => {
  t.same(problems('server:\n  disable_compression: "yes please"\n'), ['server.disable_compression: must be true or false'])
  t.same(problems('server:\n  disable_compression: 1\n'), ['server.disable_compression: must be true or false'])
})
