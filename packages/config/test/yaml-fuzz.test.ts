import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import fc from 'fast-check'
import { ConfigError, parseConfig } from '../src/load.js'

// Hostile input (issue 7): whatever text a config file holds, parseConfig either loads it or throws a ConfigError
// whose every problem points at a real place (line and column from 1). Any other exception is a crash of
// `navigator --check`, and fails here with the text that caused it (fast-check shrinks it).

// The demo's file is a template the local edge fills in (${NAVIGATOR_PORT}, ${NAVIGATOR_PORT+N}); filled in here too.
const EXAMPLES = ['basic', 'tenants', 'demo', 'rails'].map((name) =>
  readFileSync(fileURLToPath(new URL(`../../../examples/${name}/navigator.yml`, import.meta.url)), 'utf8')
    .replace(/\$\{NAVIGATOR_PORT(?:\+(\d+))?\}/g, (_, offset: string | undefined) => String(5000 + Number(offset ?? 0))))

const DIR = mkdtempSync(join(tmpdir(), 'navigator-yaml-fuzz-'))
const ENV = { STICKY_SECRET: 'fuzz-secret', HOME: '/home/fuzz' }

type Outcome = { kind: 'loaded' } | { kind: 'invalid', error: ConfigError }

/** Loads `text`; returns what happened, and rethrows anything that is not a ConfigError. */
function load (text: string): Outcome {
  try {
    parseConfig(text, { file: 'fuzz.yml', dir: DIR, env: ENV })
    return { kind: 'loaded' }
  } catch (err) {
    if (err instanceof ConfigError) return { kind: 'invalid', error: err }
    throw err
  }
}

function wellReported (text: string): boolean {
  const outcome = load(text)
  if (outcome.kind === 'loaded') return true
  const { problems, message } = outcome.error
  if (problems.length === 0) return false
  for (const problem of problems) {
    if (!Number.isInteger(problem.line) || problem.line < 1) return false
    if (!Number.isInteger(problem.column) || problem.column < 1) return false
    if (problem.file !== 'fuzz.yml' || typeof problem.message !== 'string' || problem.message === '') return false
  }
  // One line per problem, each starting with file:line:column.
  const lines = message.split('\n')
  return lines.length >= problems.length && lines.every((line) => /^fuzz\.yml:\d+:\d+: /.test(line)) &&
    problems.every((problem) => problem.line <= Math.max(1, text.split(/\r\n|\r|\n/).length + 1))
}

// Pieces that mean something to a YAML reader or to the config: indicators, anchors, tags, flow collections,
// block scalars, documents, directives, duplicated and unknown keys, ${} substitutions, odd line breaks.
const TOKENS = [
  ':', ': ', '- ', '-', '{', '}', '[', ']', ',', '"', "'", '#', '&a ', '*a', '<<: *a', '!!binary ', '!!str ', '!foo ',
  '|', '>-', '---\n', '...\n', '%YAML 1.2\n', '? ', '\t', '  ', '\n', '\r\n', '\r', '\0', '\u2028', '\ufeff',
  '${', '${STICKY_SECRET}', '${MISSING}', '$${X}', '}', 'null', '~', 'true', 'yes', '0x1F', '1e400', '-0', '.inf',
  '9999999999999999999999', '"\\u0000"', '"\\xff"', '💥', 'é', 'server:', 'routes:', 'applications:', 'tenants:',
  'listen: ', 'path: ', 'pattern: "("', 'pattern: "(a+)+$"', 'timeout: 1h30m', 'timeout: -5s', 'timeout: 1e3h',
  'cookie_samesite: None', 'paths: ["*/*"]', 'name: a', 'start: lazy', 'peers: { "UPPER": "ftp://x" }'
]

const token = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...TOKENS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }) }
)

type Mutation =
  | { op: 'insert', at: number, text: string }
  | { op: 'delete', at: number, length: number }
  | { op: 'duplicate-line', line: number }
  | { op: 'swap-lines', a: number, b: number }
  | { op: 'indent', line: number, by: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: token }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('duplicate-line' as const), line: fc.nat() }),
  fc.record({ op: fc.constant('swap-lines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ op: fc.constant('indent' as const), line: fc.nat(), by: fc.integer({ min: -4, max: 4 }) })
)

function mutate (text: string, m: Mutation): string {
  const lines = text.split('\n')
  switch (m.op) {
    case 'insert': {
      const at = m.at % (text.length + 1)
      return text.slice(0, at) + m.text + text.slice(at)
    }
    case 'delete': {
      const at = m.at % (text.length + 1)
      return text.slice(0, at) + text.slice(at + m.length)
    }
    case 'duplicate-line': {
      const i = m.line % lines.length
      lines.splice(i, 0, lines[i])
      return lines.join('\n')
    }
    case 'swap-lines': {
      const a = m.a % lines.length
      const b = m.b % lines.length;
      [lines[a], lines[b]] = [lines[b], lines[a]]
      return lines.join('\n')
    }
    case 'indent': {
      const i = m.line % lines.length
      lines[i] = m.by >= 0 ? ' '.repeat(m.by) + lines[i] : lines[i].slice(Math.min(-m.by, lines[i].length - lines[i].trimStart().length))
      return lines.join('\n')
    }
  }
}

export const mutatedExample: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...EXAMPLES), fc.array(mutation, { minLength: 1, maxLength: 6 }))
  .map(([text, mutations]) => mutations.reduce(mutate, text))

const KEYS = ['server', 'listen', 'static', 'public_dir', 'routes', 'fly', 'replay', 'sticky_sessions', 'enabled',
  'cookie_name', 'paths', 'applications', 'tenants', 'name', 'path', 'var', 'env', 'standalone_servers', 'match_path',
  'port', 'idle', 'timeout', 'rewrites', 'pattern', 'rewrite', 'region', 'secret', 'peers', 'unknown_key']
const SCALARS = ['3000', '":0"', '"127.0.0.1:0"', 'true', '"10s"', '"/app/*"', '[GET, HEAD]', '{}', '[]', 'null',
  '"${STICKY_SECRET}"', '"${NOPE}"', '-1', '65536', '"ord"', '"x y"', '307', '"^/api/(.*)"', '"$1"']

/** Nested key/value/list text in block style, at random indentation: mostly YAML, sometimes not quite. */
const yamlish: fc.Arbitrary<string> = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...SCALARS),
    tie('block')),
  block: fc.array(fc.tuple(
    fc.constantFrom(...KEYS),
    fc.boolean(),
    tie('node')
  ), { minLength: 1, maxLength: 4 }).map((entries) => entries.map(([key, listItem, value]) => {
    const text = value as string
    const nested = text.includes('\n') || /^[a-z_]+:/.test(text)
    const body = nested ? '\n' + text.split('\n').map((line) => '  ' + line).join('\n') : ' ' + text
    return listItem ? `- ${key}:${body.replace(/\n {2}/g, '\n    ')}` : `${key}:${body}`
  }).join('\n'))
})).block as fc.Arbitrary<string>

test('a mutated example config never crashes parseConfig: it loads, or every problem has a line and column', async (t) => {
  fc.assert(fc.property(mutatedExample, wellReported), { numRuns: 1500, seed: 7 })
  t.pass('1500 mutated example configs')
})

test('generated YAML-ish text never crashes parseConfig: it loads, or every problem has a line and column', async (t) => {
  fc.assert(fc.property(yamlish, wellReported), { numRuns: 1500, seed: 7 })
  t.pass('1500 generated documents')
})

test('arbitrary text, including NUL, lone surrogates and odd line breaks, never crashes parseConfig', async (t) => {
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.string({ unit: fc.constantFrom(...TOKENS), maxLength: 30 })
  )
  fc.assert(fc.property(text, wellReported), { numRuns: 1500, seed: 7 })
  t.pass('1500 arbitrary texts')
})

test('each example config still loads, so the mutations start from valid files', async (t) => {
  for (const text of EXAMPLES) t.equal(load(text).kind, 'loaded')
})

test('aliases the reader cannot turn into a value are problems at the alias, not exceptions', async (t) => {
  const laughs = ['a: &a [x, x, x, x, x, x, x, x, x, x]']
  for (const [name, previous] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd']]) {
    laughs.push(`${name}: &${name} [${Array(10).fill(`*${previous}`).join(', ')}]`)
  }
  const cases: Array<[string, string, number, number, RegExp]> = [
    ['an alias without an anchor', 'server:\n  listen: *port\n', 2, 11, /alias \*port has no anchor/],
    ['an alias inside the node it names', 'server: &s\n  static: *s\n', 2, 11, /inside the node it refers to/],
    ['a merge key on a scalar', 'x-port: &p 3000\nserver:\n  <<: *p\n', 3, 3, /Merge sources must be maps/],
    ['an alias bomb', laughs.join('\n') + '\n', 2, 8, /Excessive alias count/]
  ]
  for (const [name, text, line, column, message] of cases) {
    const outcome = load(text)
    if (outcome.kind !== 'invalid') {
      t.fail(`${name}: loaded`)
      continue
    }
    const [problem] = outcome.error.problems
    t.match(problem, { line, column, message }, name)
  }
})

test('deeply nested collections are a problem with a position or a clean load, never a stack overflow', async (t) => {
  for (const depth of [100, 1000, 5000, 20000]) {
    for (const text of [
      `server:\n  static: ${'['.repeat(depth)}${']'.repeat(depth)}\n`,
      `routes: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`,
      `${'- '.repeat(depth)}x\n`
    ]) {
      t.ok(wellReported(text), `${text.slice(0, 12)}... depth ${depth}`)
    }
  }
})
