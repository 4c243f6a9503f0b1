import { CONFIG_SCHEMA } from './generated/config-schema.js'

// Keys of ours that are not JSON Schema keywords; strict validators (ajv) reject unknown keywords.
const PRIVATE_KEYWORDS = new Set(['errorMessage'])

/**
 * The JSON Schema (draft 2020-12) of the YAML format, snake_case keys, with descriptions and defaults,
 * for editors (`# yaml-language-server: $schema=...`) and other tools. A fresh object on every call.
 */
export function configJsonSchema (): Record<string, unknown> {
  const body = JSON.parse(JSON.stringify(CONFIG_SCHEMA, (key, value) => (PRIVATE_KEYWORDS.has(key) ? undefined : value)))
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', ...body }
}
