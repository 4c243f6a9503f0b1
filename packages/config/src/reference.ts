// Generates the configuration reference (docs/configuration.md) from the schema's
// descriptions and defaults, so that the documentation cannot drift from the code.
//   node packages/config/dist/reference.js           prints it
//   node packages/config/dist/reference.js --write   writes docs/configuration.md

import { writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { ConfigSchema } from './schema.js'

interface SchemaNode {
  type?: string
  description?: string
  default?: unknown
  anyOf?: SchemaNode[]
  const?: unknown
  items?: SchemaNode
  properties?: Record<string, SchemaNode>
  patternProperties?: Record<string, SchemaNode>
  required?: string[]
  minimum?: number
  maximum?: number
  errorMessage?: string
}

interface Section {
  path: string
  node: SchemaNode
}

const INTRO = `# Configuration reference

<!-- Generated from packages/config/src/schema.ts by \`node packages/config/dist/reference.js --write\`; do not edit. -->

Navigator reads one YAML file (\`navigator config.yml\`; default \`config/navigator.yml\`). Every key is optional
unless marked *required*; an unknown key is an error. A key written with no value (\`idle_timeout:\`) takes its default.

- **Durations** use Go's format: a sequence of decimal numbers with a unit each, \`ns\`, \`us\` (or \`µs\`), \`ms\`, \`s\`,
  \`m\`, \`h\`: \`500ms\`, \`30m\`, \`2h\`, \`1h30m\`, \`1.5s\`. \`0\` is also accepted. Anything else is an error.
- **\`\${NAME}\`** in any string is replaced from the environment; an unset name is an error. In \`applications.env\`,
  \`applications.command\`, \`applications.args\` and a tenant's \`command\`, \`args\` and \`env\`, the reference is kept and
  resolved when the tenant starts: from the tenant's \`var\`, then \`PORT\`, then the environment (each name must resolve).
- **Errors** are reported all at once, one line each: \`file:line:column: path.to.key: message\`.
`

/** The markdown reference of every key: one table per section, from the schema's descriptions and defaults. */
export function renderConfigReference (): string {
  const sections: Section[] = []
  collectSections('', ConfigSchema as unknown as SchemaNode, sections)
  const parts = [INTRO]
  for (const section of sections) {
    parts.push(`## \`${section.path}\`\n\n${section.node.description ?? ''}\n\n${renderTable(section)}`)
  }
  return parts.join('\n') + '\n'
}

function collectSections (path: string, node: SchemaNode, sections: Section[]): void {
  if (path !== '') sections.push({ path, node })
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const childPath = path === '' ? key : `${path}.${key}`
    if (child.type === 'object' && child.properties !== undefined) collectSections(childPath, child, sections)
    if (child.type === 'array' && child.items?.type === 'object' && child.items.properties !== undefined) {
      collectSections(`${childPath}[]`, { ...child.items, description: `${child.description ?? ''} Each item:`.trim() }, sections)
    }
  }
}

function renderTable (section: Section): string {
  const rows = ['| key | type | default | meaning |', '| --- | --- | --- | --- |']
  const required = new Set(section.node.required ?? [])
  for (const [key, child] of Object.entries(section.node.properties ?? {})) {
    const cells = [`\`${key}\``, typeOf(child, `${section.path}.${key}`), required.has(key) ? '*required*' : defaultOf(child), child.description ?? '']
    rows.push(`| ${cells.map(escapeCell).join(' | ')} |`)
  }
  return rows.join('\n') + '\n'
}

function typeOf (node: SchemaNode, path: string): string {
  if (node.errorMessage?.includes('duration') === true) return 'duration'
  if (node.anyOf !== undefined) {
    const members = node.anyOf.filter((member) => member.type !== 'null')
    if (members.every((member) => member.const !== undefined)) return members.map((member) => `\`${String(member.const)}\``).join(' | ')
    return members.map((member) => typeOf(member, path)).join(' or ')
  }
  switch (node.type) {
    case 'integer':
      return node.minimum !== undefined && node.maximum !== undefined ? `integer (${node.minimum}-${node.maximum})` : 'integer'
    case 'array':
      if (node.items?.type === 'object' && node.items.properties !== undefined) return `list of mappings (see \`${path}[]\`)`
      return `list of ${typeOf(node.items ?? {}, path)}s`
    case 'object':
      if (node.patternProperties !== undefined) return 'map of name to string'
      return `mapping (see \`${path}\`)`
    default:
      return node.type ?? 'any'
  }
}

function defaultOf (node: SchemaNode): string {
  if (!('default' in node)) return '—'
  const value = node.default
  if (value === null) return 'none'
  if (Array.isArray(value)) return `\`[${value.map((item) => (/^[\w./-]+$/.test(String(item)) ? String(item) : JSON.stringify(item))).join(', ')}]\``
  if (typeof value === 'object') return `\`${JSON.stringify(value)}\``
  return `\`${String(value)}\``
}

function escapeCell (cell: string): string {
  return cell.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

const REFERENCE_FILE = new URL('../../../docs/configuration.md', import.meta.url)

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const markdown = renderConfigReference()
  if (process.argv.includes('--write')) {
    writeFileSync(REFERENCE_FILE, markdown)
    process.stdout.write(`wrote ${fileURLToPath(REFERENCE_FILE)}\n`)
  } else {
    process.stdout.write(markdown)
  }
}
