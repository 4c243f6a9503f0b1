import { test } from 'tap'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseConfig, ConfigError } from '../src/index.js'
import { parseFast } from '../src/yaml-source.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..', '..')
const env = { STICKY_SECRET: 'a-secret-of-enough-length', HOME: '/home/test', PATH: '/usr/bin' }

function both (text: string, file = 'navigator.yml') {
  const fast = parseConfig(text, { file, env })
  const careful = parseConfig(text, { file, env, positions: true })
  return { fast, careful }
}

const files = [
  'packages/config/test/fixtures/full-example.yml',
  'examples/basic/navigator.yml',
  'examples/tenants/navigator.yml',
  'examples/demo/navigator.yml',
  'examples/rails/navigator.yml',
  'examples/rails/config/navigator.yml'
]

test('the fast reader and the position-keeping reader agree on every example config', async (t) => {
  for (const relative of files) {
    const file = join(root, relative)
    const text = readFileSync(file, 'utf8')
    let fast: unknown
    let careful: unknown
    try {
      ({ fast, careful } = both(text, file))
    } catch (err) {
      // An example that needs variables this test does not set must fail the same way in both.
      t.type(err, ConfigError, relative)
      t.throws(() => parseConfig(text, { file, env, positions: true }), { message: (err as Error).message }, relative)
      continue
    }
    t.same(fast, careful, relative)
  }
})

test('both readers give the YAML 1.2 core meaning to look-alike scalars', async (t) => {
  const text = `applications:
  env:
    DATE: 2001-12-14
    ANSWER: yes
    OCTAL: 0o14
    FLOAT: 1.5
    EMPTY_STRING: ""
  tenants:
    - name: a
      path: /a
`
  const { fast, careful } = both(text)
  t.same(fast.applications.env, careful.applications.env)
  t.equal(fast.applications.env.DATE, '2001-12-14', 'a date stays text')
  t.equal(fast.applications.env.ANSWER, 'yes', 'yes is not a boolean in YAML 1.2')
  t.equal(fast.applications.env.OCTAL, '12', '0o14 is the number 12')
})

test('merge keys work in both readers; aliases and duplicate keys take the careful reader', async (t) => {
  const merged = `x-defaults: &defaults
  working_dir: /srv
  start: eager
applications:
  tenants:
    - name: a
      path: /a
      <<: *defaults
`
  t.equal(parseFast(merged), undefined, 'an alias sends the text to the careful reader')
  const { fast, careful } = both(merged)
  t.same(fast, careful)
  t.equal(fast.applications.tenants[0].start, 'eager')

  t.equal(parseFast('server:\n  listen: 1\n  listen: 2\n'), undefined, 'js-yaml refuses duplicate keys')
  const error = t.throws(() => parseConfig('server:\n  listen: 1\n  listen: 2\n', { file: 'dup.yml', env })) as ConfigError
  t.match(error.message, /^dup\.yml:3:\d+: /, 'the duplicate is reported with its position')
})

test('a problem found after the fast read still carries line and column', async (t) => {
  const text = 'server:\n  listen: 3000\n  helth_check: /up\n'
  t.not(parseFast(text), undefined, 'the text is valid YAML, so the fast reader reads it')
  const error = t.throws(() => parseConfig(text, { file: 'typo.yml', env })) as ConfigError
  t.match(error.message, /^typo\.yml:3:3: server\.helth_check: .*health_check/)
})
