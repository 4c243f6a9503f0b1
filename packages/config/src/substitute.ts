// `${NAME}` references in configuration strings. A "$" that does not start a
// `${NAME}` reference is kept as it is; NAME is a shell-style identifier.

import type { TenantConfig } from './types.js'

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

export type VariableLookup = (name: string) => string | undefined

export interface Substitution {
  value: string
  /** Names that `lookup` did not resolve (each once, in order of appearance); their references are kept. */
  missing: string[]
}

/** Replaces every `${NAME}` that `lookup` resolves; unresolved references stay in the text and are listed. */
export function substitute (text: string, lookup: VariableLookup): Substitution {
  const missing: string[] = []
  if (!text.includes('${')) return { value: text, missing }
  const value = text.replace(REFERENCE, (reference, name: string) => {
    const resolved = lookup(name)
    if (resolved === undefined) {
      if (!missing.includes(name)) missing.push(name)
      return reference
    }
    return resolved
  })
  return { value, missing }
}

/** The names referenced by `text`, each once. */
export function referencedNames (text: string): string[] {
  const names: string[] = []
  if (!text.includes('${')) return names
  for (const match of text.matchAll(REFERENCE)) {
    if (!names.includes(match[1])) names.push(match[1])
  }
  return names
}

/** A lookup over an environment object, ignoring inherited properties. */
export function environmentLookup (env: NodeJS.ProcessEnv): VariableLookup {
  return (name) => (Object.hasOwn(env, name) ? env[name] : undefined)
}

/**
 * The lookup for a tenant's `command`, `args` and `env` (and `applications.env/command/args`), in this order:
 * the tenant's `var`, then `PORT`, then the environment.
 */
export function tenantLookup (tenant: Pick<TenantConfig, 'var'>, port: number | string | undefined, env: NodeJS.ProcessEnv): VariableLookup {
  const fromEnv = environmentLookup(env)
  return (name) => {
    if (Object.hasOwn(tenant.var, name)) return tenant.var[name]
    if (name === 'PORT' && port !== undefined) return String(port)
    return fromEnv(name)
  }
}
