import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import fc from 'fast-check'
import { runCli, tempDir } from './helpers.js'

// Hostile input (issue 7): `navigator --check` on broken and hostile config files, as a user runs it. Every run ends
// with exit 0 and "ok", or exit 2 and one `file:line:column: path: message` line per problem; never a stack trace,
// never another exit status. (packages/config/test/yaml-fuzz.test.ts fuzzes parseConfig itself, thousands of times.)

const EXAMPLE = readFileSync(fileURLToPath(new URL('../../../examples/tenants/navigator.yml', import.meta.url)), 'utf8')

const HAND_PICKED: Record<string, string> = {
  'alias without anchor': 'server:\n  listen: *port\n',
  'alias inside its own node': 'server: &s\n  static: *s\n',
  'merge of a scalar': 'x-port: &p 3000\nserver:\n  <<: *p\n',
  'alias bomb': ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]', ''].join('\n'),
  'deep nesting': `routes: ${'['.repeat(5_000)}${']'.repeat(5_000)}\n`,
  'NUL and control bytes': 'server:\n  listen: "\0\x01\x1b[31m"\n',
  'binary garbage': Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)).toString('latin1'),
  'unterminated string': 'server:\n  listen: "3000\n',
  'tabs for indentation': 'server:\n\tlisten: 3000\n',
  'a regular expression that does not compile': 'routes:\n  rewrites:\n    - pattern: "(("\n      rewrite: "/"\n',
  'an unknown ${NAME}': 'server:\n  listen: "${NAVIGATOR_FUZZ_UNSET}"\n',
  'empty file': '',
  'a UTF-8 byte order mark': '\ufeffserver:\n  listen: 3000\n',
  'several documents': 'server:\n  listen: 3000\n---\nserver:\n  listen: 4000\n'
}

/** Runs the tasks, a few processes at a time. */
async function inParallel (tasks: Array<() => Promise<void>>, width = 3): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < tasks.length) await tasks[next++]()
  }))
}

function wellFormed (t: Parameters<Parameters<typeof test>[1]>[0], label: string, result: { code: number | null, stdout: string, stderr: string }, file: string): void {
  if (result.code === 0) {
    t.match(result.stdout, /: ok\n$/, `${label}: exit 0 says ok`)
    return
  }
  t.equal(result.code, 2, `${label}: exit 2 (got ${String(result.code)}; stderr ${result.stderr.slice(0, 300)})`)
  t.notMatch(result.stderr, /^\s+at /m, `${label}: no stack trace`)
  const lines = result.stderr.split('\n').filter((line) => line !== '' && !/^\(node:\d+\) Warning: /.test(line))
  t.ok(lines.length > 0, `${label}: at least one problem`)
  for (const line of lines) {
    if (!line.startsWith(`${file}:`) || !/^.+:\d+:\d+: \S/.test(line)) t.fail(`${label}: not a problem line: ${JSON.stringify(line.slice(0, 200))}`)
  }
}

test('navigator --check reports hand-picked hostile config files with positions, never a stack trace', async (t) => {
  const dir = tempDir()
  await inParallel(Object.entries(HAND_PICKED).map(([label, text], i) => async () => {
    const file = join(dir, `picked-${i}.yml`)
    writeFileSync(file, text, 'latin1')
    wellFormed(t, label, await runCli(['--check', file], 60_000), file)
  }))
})

test('navigator --check on mutated example configs: exit 0 or 2, never a stack trace', async (t) => {
  const dir = tempDir()
  const mutation = fc.tuple(fc.nat(), fc.nat({ max: 30 }), fc.constantFrom('', ':', '- ', '&a ', '*a', '<<: *a', '[', '{', '"', '\t', '\n  ', '${X}', '!!binary ', '\0', '💥'))
  const texts = fc.sample(fc.array(mutation, { minLength: 1, maxLength: 4 }).map((mutations) =>
    mutations.reduce((text, [at, length, insert]) => {
      const position = at % (text.length + 1)
      return text.slice(0, position) + insert + text.slice(position + length)
    }, EXAMPLE)), { numRuns: 6, seed: 7 })
  await inParallel(texts.map((text, i) => async () => {
    const file = join(dir, `mutant-${i}.yml`)
    writeFileSync(file, text)
    wellFormed(t, `mutant ${i}`, await runCli(['--check', file], 60_000), file)
  }))
})
