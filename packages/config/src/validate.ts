// The schema pass: the check generated from the schema, and, for a config that fails it, TypeBox's errors turned
// into problems with user-facing messages ("unknown key `lsiten`; did you mean `listen`?"). Defaults are not
// filled in here: the normalisation (load.ts) applies every one.

import { createRequire } from 'node:module'
import type * as TypeBoxCompile from 'typebox/compile'
import type * as TypeBoxSystem from 'typebox/system'
import type { TLocalizedValidationError } from 'typebox/error'
import { Check } from './generated/config-check.js'
import { CONFIG_SCHEMA } from './generated/config-schema.js'
import type { ErrorMessageAnnotation } from './schema.js'
import type { KeyPath, ProblemCollector } from './problems.js'
import { closest } from './suggest.js'

/** Records a problem for every schema violation of `value`. */
export function reportSchemaProblems (value: unknown, problems: ProblemCollector): void {
  if (Check(value) as boolean) return
  for (const error of allErrors(value)) report(error, problems)
}

/**
 * Every violation, by TypeBox, loaded here only: a valid config never needs it (it would cost a running Navigator
 * about 20 MiB of memory). TypeBox stops at 8 errors by default; a config report must list them all.
 */
function allErrors (value: unknown): TLocalizedValidationError[] {
  const require = createRequire(import.meta.url)
  const { Compile } = require('typebox/compile') as typeof TypeBoxCompile
  const { Settings } = require('typebox/system') as typeof TypeBoxSystem
  const previous = Settings.Get().maxErrors
  Settings.Set({ maxErrors: Number.MAX_SAFE_INTEGER })
  try {
    return withoutUnionDetails(Compile(CONFIG_SCHEMA as never).Errors(value))
  } finally {
    Settings.Set({ maxErrors: previous })
  }
}

// A value that fits no member of a union produces one error per member plus the
// union's own; keep only the union's, whose message says what is expected.
function withoutUnionDetails (errors: TLocalizedValidationError[]): TLocalizedValidationError[] {
  const unions = errors.filter((error) => error.keyword === 'anyOf').map((error) => error.schemaPath + '/anyOf/')
  return errors.filter((error) => {
    if (error.keyword === 'boolean' && error.schemaPath.endsWith('/additionalProperties')) return false
    return !unions.some((prefix) => error.schemaPath.startsWith(prefix))
  })
}

function report (error: TLocalizedValidationError, problems: ProblemCollector): void {
  const path = instancePath(error.instancePath)
  const schema = schemaAt(error.schemaPath)
  const annotated = (schema as ErrorMessageAnnotation | undefined)?.errorMessage
  switch (error.keyword) {
    case 'additionalProperties': {
      const valid = Object.keys((schema as { properties?: object } | undefined)?.properties ?? {})
      for (const key of (error.params as { additionalProperties: string[] }).additionalProperties) {
        problems.add([...path, key], unknownKeyMessage(key, valid, homesOf(key)), 'key')
      }
      return
    }
    case 'required':
      for (const key of (error.params as { requiredProperties: string[] }).requiredProperties) {
        problems.add([...path, key], `missing required key \`${key}\``)
      }
      return
    case 'type':
      problems.add(path, `must be ${article((error.params as { type: string }).type)}`)
      return
    case 'anyOf':
    case 'pattern':
      problems.add(path, annotated ?? error.message)
      return
    case 'minLength':
      problems.add(path, 'must not be empty')
      return
    case 'minItems': {
      const limit = (error.params as { limit: number }).limit
      problems.add(path, `must list at least ${limit} item${limit === 1 ? '' : 's'}`)
      return
    }
    case 'minimum':
      problems.add(path, `must be at least ${String((error.params as { limit: number }).limit)}`)
      return
    case 'maximum':
      problems.add(path, `must be at most ${String((error.params as { limit: number }).limit)}`)
      return
    default:
      problems.add(path, annotated ?? error.message)
  }
}

export function unknownKeyMessage (key: string, valid: readonly string[], homes: readonly string[] = []): string {
  const suggestion = closest(key, valid)
  if (suggestion !== null) return `unknown key \`${key}\`; did you mean \`${suggestion}\`?`
  if (homes.length > 0) return `unknown key \`${key}\` here; it belongs under ${homes.map((home) => `\`${home}\``).join(' or ')}`
  if (valid.length === 0) return `unknown key \`${key}\`: this mapping takes no keys`
  return `unknown key \`${key}\`; valid keys here: ${valid.join(', ')}`
}

let keyHomes: Map<string, string[]> | null = null

// Where else in the format a key exists ("sticky_sessions" -> ["routes.fly"]), for keys put at the wrong level.
function homesOf (key: string): string[] {
  if (keyHomes === null) {
    const homes = new Map<string, string[]>()
    const walk = (node: any, path: string): void => {
      for (const [name, child] of Object.entries<any>(node?.properties ?? {})) {
        homes.set(name, [...(homes.get(name) ?? []), path === '' ? '(top level)' : path])
        const childPath = path === '' ? name : `${path}.${name}`
        if (child?.type === 'object') walk(child, childPath)
        if (child?.type === 'array' && child.items?.type === 'object') walk(child.items, `${childPath}[]`)
      }
    }
    walk(CONFIG_SCHEMA, '')
    keyHomes = homes
  }
  return keyHomes.get(key) ?? []
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'empty'
}

function article (type: string): string {
  return TYPE_NAMES[type] ?? `of type ${type}`
}

function instancePath (pointer: string): KeyPath {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map((segment) => {
    const key = segment.replace(/~1/g, '/').replace(/~0/g, '~')
    return /^(0|[1-9]\d*)$/.test(key) ? Number(key) : key
  })
}

function schemaAt (pointer: string): unknown {
  let node: unknown = CONFIG_SCHEMA
  for (const segment of pointer.replace(/^#\/?/, '').split('/')) {
    if (segment === '') continue
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[segment.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return node
}
