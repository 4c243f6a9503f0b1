// Two YAML readers with one meaning. js-yaml reads a file in a few milliseconds but keeps no
// positions; the \`yaml\` library keeps every node's position and is some fifteen times slower
// (a 500-tenant file: ~55 ms against ~3 ms, bench/config-load.mjs). A valid file, the common
// case, is read once with js-yaml; the \`yaml\` document is built only when there is something
// to report or js-yaml cannot be trusted with the text. Both use the YAML 1.2 core schema with
// merge keys, and a test checks that they agree on every example config.

import jsYaml from 'js-yaml'
import { LineCounter, parseDocument, type Document } from 'yaml'

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
