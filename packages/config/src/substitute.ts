// `${NAME}` and `${NAME:-default}` references in configuration strings. A "$" that does not start a
// reference is kept as it is; NAME is a shell-style identifier. As in a shell, the default (any text without "}")
// replaces a name that is unset or empty, so one file serves a plain run and the local Fly edge, which sets more.

import type { TenantConfig } from './types.js'

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

export type VariableLookup = (name: string) => string | undefined

export interface Substitution {
  value: string
  /** Names that `lookup` did not resolve (each once, in order of appearance); their references are kept. */
  missing: string[]
}

/**
 * Replaces every `${NAME}` that `lookup` resolves and every `${NAME:-default}` (with the default when NAME is unset
 * or empty); unresolved references stay in the text and are listed.
 */
export function substitute (text: string, lookup: VariableLookup): Substitution {
  const missing: string[] = []
  if (!text.includes('${')) return { value: text, missing }
  const value = text.replace(REFERENCE, (reference, name: string, fallback: string | undefined) => {
    const resolved = lookup(name)
    if (fallback !== undefined && (resolved === undefined || resolved === '')) return fallback
    if (resolved === undefined) {
      if (!missing.includes(name)) missing.push(name)
      return reference
    }
    return resolved
  })
  return { value, missing }
}

/**
 * The names referenced by `text`, each once. A reference with a default is listed whole (`NAME:-default`): values
 * that keep their references until a tenant starts are resolved then name by name, without defaults, so such a
 * reference only works where the file is substituted at load time, and the loader's check reports it elsewhere.
 */
export function referencedNames (text: string): string[] {
  const names: string[] = []
  if (!text.includes('${')) return names
  for (const match of text.matchAll(REFERENCE)) {
    const name = match[2] === undefined ? match[1] : `${match[1]}:-${match[2]}`
    if (!names.includes(name)) names.push(name)
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
