// `server.cgi_scripts`: programs run as CGI/1.1 scripts on a path of their own. Their checks and normalised form;
// the server runs them (packages/server/src/cgi.ts). A `user` or `group` is looked up here and checked with the
// launch paths (as a tenant's is, see run-as.ts), so that a name that does not exist, or a Navigator that cannot
// switch users, is a config error with a position at --check, a start or a reload rather than a 502 at the first
// request.

import { accessSync, constants, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { KeyPath, ProblemCollector } from './problems.js'
import { canSwitchUser, lookupGroup, lookupUser } from './run-as.js'
import type { CgiScriptConfig } from './types.js'

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

interface Context {
  dir: string
  problems: ProblemCollector
  /** Reads a duration at a key path (0 when absent), reporting a bad one. */
  durationMs: (value: unknown, path: KeyPath) => number
  /** Whether `auth` is on (allowed_users needs it). */
  authEnabled: boolean
}

const optional = (value: unknown): string | null => typeof value === 'string' && value !== '' ? value : null

/** `server.cgi_scripts`, checked: unique paths, a method that is an HTTP token, users that exist and can be switched to. */
export function normaliseCgiScripts (value: unknown, ctx: Context): CgiScriptConfig[] {
  const { problems } = ctx
  const seen = new Map<string, number>()
  const entries = Array.isArray(value) ? value : []
  return entries.map((item, index): CgiScriptConfig => {
    const entry = typeof item === 'object' && item !== null ? item as Record<string, unknown> : {}
    const at = ['server', 'cgi_scripts', index]
    const path = typeof entry.path === 'string' ? entry.path : ''
    if (typeof entry.path === 'string' && !/^\/[^\s?#]*$/.test(path)) {
      problems.add([...at, 'path'], 'must be a URL path starting with "/" (no spaces, "?" or "#")')
    }
    const before = seen.get(path)
    if (before !== undefined) problems.add([...at, 'path'], `${path} is server.cgi_scripts.${before}.path already: each script needs a path of its own`)
    else seen.set(path, index)
    const method = optional(entry.method)
    if (method !== null && !METHOD.test(method)) problems.add([...at, 'method'], 'must be an HTTP method such as GET or POST')
    const allowedUsers = Array.isArray(entry.allowed_users) ? entry.allowed_users.filter((user): user is string => typeof user === 'string') : []
    if (allowedUsers.length > 0 && !ctx.authEnabled) {
      problems.add([...at, 'allowed_users'], 'allowed_users names users of `auth`, which is off: enable auth (enabled: true, htpasswd: <file>), or remove allowed_users')
    }
    const user = optional(entry.user)
    const group = optional(entry.group)
    // Looked up here, reported by checkCgiScripts: whether a user exists is a fact of the machine, checked with the
    // launch paths (--check, a start, a reload), not of the file.
    const account = user === null || !canSwitchUser() ? null : lookupUser(user)
    const uid = account?.uid ?? null
    const gid = group === null || !canSwitchUser() ? account?.gid ?? null : lookupGroup(group)
    return {
      path,
      script: resolve(ctx.dir, typeof entry.script === 'string' ? entry.script : ''),
      method: method?.toUpperCase() ?? null,
      user,
      group,
      uid,
      gid,
      allowedUsers,
      env: stringRecord(entry.env),
      reloadConfig: optional(entry.reload_config) === null ? null : resolve(ctx.dir, entry.reload_config as string),
      timeoutMs: ctx.durationMs(entry.timeout, [...at, 'timeout'])
    }
  })
}

function stringRecord (value: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (typeof value !== 'object' || value === null) return out
  for (const [key, child] of Object.entries(value)) if (typeof child === 'string') out[key] = child
  return out
}

/**
 * Each script must be an executable file now, and its `user` and `group` must exist and be reachable: only root
 * runs a script as another user (`--check`, a start, a reload).
 */
export function checkCgiScripts (scripts: readonly CgiScriptConfig[], problems: ProblemCollector): void {
  scripts.forEach((script, index) => {
    const here = ['server', 'cgi_scripts', index]
    if ((script.user !== null || script.group !== null) && !canSwitchUser()) {
      problems.add([...here, script.user !== null ? 'user' : 'group'], `running a script as another ${script.user !== null ? 'user' : 'group'} needs Navigator to run as root, and it runs as uid ${String(process.getuid?.())}: remove user and group (the script then runs as Navigator's user), or run Navigator as root`)
    } else {
      if (script.user !== null && script.uid === null) problems.add([...here, 'user'], `there is no user ${JSON.stringify(script.user)} on this system: create it (useradd), or name an existing user or a numeric uid`)
      if (script.group !== null && script.gid === null) problems.add([...here, 'group'], `there is no group ${JSON.stringify(script.group)} on this system: create it (groupadd), or name an existing group or a numeric gid`)
    }
    const at = [...here, 'script']
    try {
      if (!statSync(script.script).isFile()) {
        problems.add(at, `${script.script} is not a file: write the path of the script, relative to the config file's folder or absolute`)
        return
      }
    } catch {
      problems.add(at, `the script ${script.script} does not exist: write its path, relative to the config file's folder or absolute`)
      return
    }
    try {
      accessSync(script.script, constants.X_OK)
    } catch {
      problems.add(at, `the script ${script.script} is not executable: chmod +x it (and start it with a #! line)`)
    }
  })
}
