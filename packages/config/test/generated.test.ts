import { test } from 'tap'
import { readFileSync } from 'node:fs'
import { generatedFiles } from '../src/generate.js'
import { parseConfig } from '../src/index.js'

// Loading a config runs a check generated from the schema, not TypeBox's compiler; these files must be what the
// schema generates today.

test('the generated schema and check are those of the current schema', async (t) => {
  for (const [name, content] of Object.entries(generatedFiles())) {
    const current = readFileSync(new URL(`../src/generated/${name}`, import.meta.url), 'utf8')
    t.equal(current, content, `src/generated/${name} is current (else: node packages/config/dist/generate.js --write)`)
  }
})

test('a valid config loads without TypeBox; an invalid one still gets its messages', async (t) => {
  t.equal(parseConfig('server:\n  listen: 3001\n').server.listen.port, 3001)
  t.throws(() => parseConfig('server:\n  lsiten: 3001\n'), /unknown key `lsiten`; did you mean `listen`\?/)
})

test('the check counts code points as TypeBox does (its one guard, written into the generated file)', async (t) => {
  const { Guard } = await import('typebox/guard')
  const source = readFileSync(new URL('../src/generated/config-check.ts', import.meta.url), 'utf8')
  const start = source.indexOf('const Guard = {')
  // eslint-disable-next-line no-new-func -- the generated function itself is what is compared with TypeBox's
  const written = new Function(`${source.slice(start, source.indexOf('\n}\n', start) + 2)}; return Guard`)() as { CodePointCount: (value: string) => number }
  for (const value of ['', 'a', 'héllo', '😀', 'a😀b', '\ud83d', '\ude00', 'x\ud83dy', '\ude00\ud83d', '😀😀', '\ud83d\ud83d\ude00']) {
    t.equal(written.CodePointCount(value), Guard.CodePointCount(value), JSON.stringify(value))
  }
})
