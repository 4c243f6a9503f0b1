// Two YAML readers with one meaning. js-yaml reads a file in a few milliseconds but keeps no
// positions; the \`yaml\` library keeps every node's position and is some fifteen times slower
// (a 500-tenant file: ~55 ms against ~3 ms, bench/config-load.mjs). A valid file, the common
// case, is read once with js-yaml; the \`yaml\` document is built only when there is something
// to report or js-yaml cannot be trusted with the text. Both use the YAML 1.2 core schema with
// merge keys, and a test checks that they agree on every example config.

import jsYaml from 'js-yaml'
import type { Document, LineCounter } from 'yaml'
import { yamlLibrary } from './yaml-lib.js'

export interface PositionedYaml {
  document: Document
  lineCounter: LineCounter
}

// js-yaml exports its built-in types as \`types\`; @types/js-yaml does not declare it.
const { merge } = (jsYaml as unknown as { types: { merge: jsYaml.Type } }).types
const FAST_SCHEMA = jsYaml.CORE_SCHEMA.extend({ implicit: [merge] })

// An alias (\`*name\` after a space or a flow indicator) makes js-yaml share nodes that later
// passes would walk once per reference; the \`yaml\` reader caps aliases, so such files take it.
const ALIAS = /(?:^|[\s[{,])\*[^\s,\]}]/m

export function parseWithPositions (text: string): PositionedYaml {
  const { LineCounter, parseDocument } = yamlLibrary()
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true })
  return { document, lineCounter }
}

/** The plain value of a YAML text by the fast reader, or undefined when the careful one must read it. */
export function parseFast (text: string): { value: unknown } | undefined {
  if (ALIAS.test(text)) return undefined
  try {
    return { value: jsYaml.load(text, { schema: FAST_SCHEMA }) }
  } catch {
    return undefined
  }
}

/** Aliases a document may use in all; more means a billion-laughs style file, not a config. */
export const MAX_ALIAS_COUNT = 1000

/** Something that keeps a syntactically valid document from becoming a plain value, at a source offset. */
export interface ValueProblem {
  offset: number
  message: string
}

/**
 * The plain value of a document the careful reader parsed without errors, or why it has none. Aliases are checked
 * first: one without an anchor before it, or one inside the very node it names (a cycle no config can mean), is
 * reported where it stands. Whatever else the conversion refuses (a merge key on something that is not a map, too
 * many aliases) is reported at the merge key or the first alias, never thrown.
 */
export function documentValue ({ document }: PositionedYaml): { value: unknown } | { problems: ValueProblem[] } {
  const { isScalar, visit } = yamlLibrary()
  const problems: ValueProblem[] = []
  let firstAlias: number | undefined
  let firstMerge: number | undefined
  visit(document, {
    Pair (_, pair) {
      if (firstMerge === undefined && isScalar(pair.key) && pair.key.source === '<<') firstMerge = pair.key.range?.[0]
    },
    Alias (_, alias, path) {
      const offset = alias.range?.[0] ?? 0
      firstAlias ??= offset
      const target = alias.resolve(document)
      if (target === undefined) {
        problems.push({ offset, message: `alias *${alias.source} has no anchor &${alias.source} before it` })
      } else if (path.includes(target)) {
        problems.push({ offset, message: `alias *${alias.source} is inside the node it refers to` })
      }
    }
  })
  if (problems.length > 0) return { problems }
  try {
    return { value: document.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) }
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]
    const offset = /merge/i.test(message) ? firstMerge ?? firstAlias ?? 0 : firstAlias ?? firstMerge ?? 0
    return { problems: [{ offset, message }] }
  }
}
