import { test } from 'tap'
import { readFile } from 'node:fs/promises'
import { renderConfigReference, withKeyTables } from '../src/reference.js'
import { configJsonSchema } from '../src/json-schema.js'

const REFERENCE_FILE = new URL('../../../docs/configuration.md', import.meta.url)
const README_FILE = new URL('../README.md', import.meta.url)

test('docs/configuration.md is the rendered reference (regenerate with `node packages/config/dist/reference.js --write`)', async (t) => {
  const committed = await readFile(REFERENCE_FILE, 'utf8')
  t.equal(committed, renderConfigReference())
})

test('the key tables of the package README are the rendered ones', async (t) => {
  const readme = await readFile(README_FILE, 'utf8')
  t.equal(readme, withKeyTables(readme))
  t.throws(() => withKeyTables('# no markers'), /markers/)
})

test('the reference has a table row for every key of the schema, with its default', async (t) => {
  const markdown = renderConfigReference()
  const sections: Array<[string, Record<string, unknown>]> = []
  const walk = (path: string, node: any): void => {
    for (const [key, child] of Object.entries<any>(node.properties ?? {})) {
      const here = path === '' ? key : `${path}.${key}`
      sections.push([path, { key, child }])
      if (child.type === 'object' && child.properties) walk(here, child)
      if (child.type === 'array' && child.items?.properties) walk(`${here}[]`, child.items)
    }
  }
  walk('', configJsonSchema())
  t.ok(sections.length >= 50, `${sections.length} keys`)
  for (const [path, { key, child }] of sections as Array<[string, { key: string, child: any }]>) {
    if (path === '') {
      // A top-level list of mappings (managed_processes) has its section named for its items: `key[]`.
      t.match(markdown, new RegExp(`## \`${key}(\\[\\])?\``), `a section for ${key}`)
      continue
    }
    t.match(markdown, `| \`${key}\` |`, `${path}.${key} has a row`)
    t.ok(typeof child.description === 'string' && child.description.length > 0, `${path}.${key} has a description`)
  }
  t.match(markdown, '| `cookie_max_age` | duration | `24h` |')
  t.match(markdown, '| `fallback_mode` | `maintenance` \\| `route_to_available` | `maintenance` |')
  t.match(markdown, '| `args` | list of strings | `[server, -b, 127.0.0.1, -p, "${PORT}"]` |')
  t.match(markdown, '| `name` | string | *required* |')
})
