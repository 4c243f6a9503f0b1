// `auth`, the Go Navigator's HTTP Basic authentication: its checks and its normalised form. The htpasswd file itself
// is read by the server (it is reread while running); here only its existence is checked, with `--check` and at a
// start or a reload, so that a wrong path is a config error with a position rather than a 401 for everyone.

import { accessSync, constants, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { DEFAULT_AUTH_REALM } from './defaults.js'
import type { KeyPath, ProblemCollector } from './problems.js'
import type { AuthConfig, AuthPattern } from './types.js'

/** Compiles a regular expression of the config, reporting a bad or catastrophic one at `path`. */
export type RegexCompiler = (value: unknown, path: KeyPath) => RegExp

/** Why a `public_paths` entry cannot match a request path, or null when it can. */
export function publicPathProblem (pattern: string): string | null {
  if (/[\s#]/.test(pattern)) return `public path ${JSON.stringify(pattern)} must not contain spaces or "#"`
  if (!pattern.startsWith('/') && pattern.includes('/')) {
    return `public path ${JSON.stringify(pattern)} must start with "/", or be a last segment such as "*.css" (no "/")`
  }
  return null
}

/** `auth`; null when absent or not enabled (the other keys are checked all the same). */
export function normaliseAuth (auth: Record<string, unknown>, dir: string, problems: ProblemCollector, compile: RegexCompiler): AuthConfig | null {
  const at = ['auth']
  const publicPaths = Array.isArray(auth.public_paths) ? auth.public_paths.filter((item): item is string => typeof item === 'string') : []
  publicPaths.forEach((pattern, index) => {
    const problem = publicPathProblem(pattern)
    if (problem !== null) problems.add([...at, 'public_paths', index], problem)
  })
  const authPatterns: AuthPattern[] = (Array.isArray(auth.auth_patterns) ? auth.auth_patterns : []).map((item, index) => {
    const rule = typeof item === 'object' && item !== null ? item as Record<string, unknown> : {}
    const action = typeof rule.action === 'string' ? rule.action : 'off'
    return { pattern: compile(rule.pattern, [...at, 'auth_patterns', index, 'pattern']), realm: action === 'off' ? null : action }
  })
  if (auth.enabled !== true) return null
  if (typeof auth.htpasswd !== 'string') {
    problems.add([...at, 'enabled'], 'authentication needs `htpasswd`: the file of users and password hashes')
    return null
  }
  return {
    realm: typeof auth.realm === 'string' ? auth.realm : DEFAULT_AUTH_REALM,
    htpasswd: resolve(dir, auth.htpasswd),
    publicPaths,
    authPatterns
  }
}

/** The htpasswd file must be a readable file now (`--check`, a start, a reload). */
export function checkAuthFile (auth: AuthConfig | null, problems: ProblemCollector): void {
  if (auth === null) return
  const path = ['auth', 'htpasswd']
  let stats
  try {
    stats = statSync(auth.htpasswd, { throwIfNoEntry: false })
  } catch {
    // ENOTDIR (a file in the middle of the path), ENAMETOOLONG: no such file either.
  }
  if (stats === undefined) {
    problems.add(path, `the htpasswd file ${auth.htpasswd} does not exist`)
  } else if (!stats.isFile()) {
    problems.add(path, `${auth.htpasswd} is not a file`)
  } else {
    try {
      accessSync(auth.htpasswd, constants.R_OK)
    } catch {
      problems.add(path, `the htpasswd file ${auth.htpasswd} cannot be read`)
    }
  }
}
