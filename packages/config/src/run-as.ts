// Tenants run as another user or group (applications.user / group, a tenant's own): names resolve through the
// system's user database, and only root may switch to another user.

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { ProblemCollector } from './problems.js'
import type { ApplicationsConfig } from './types.js'

/**
 * The uid of a user name, or of a number written as one ("1000"); null when there is no such user. Asks `getent`
 * (which sees every source the system is configured with, LDAP included) and falls back to reading /etc/passwd
 * where getent is missing.
 */
export function lookupUser (name: string): { uid: number, gid: number } | null {
  const fields = databaseEntry('passwd', name)
  if (fields !== null) return { uid: Number(fields[2]), gid: Number(fields[3]) }
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: Number(name) }
  return null
}

/** The gid of a group name, or of a number written as one; null when there is no such group. */
export function lookupGroup (name: string): number | null {
  const fields = databaseEntry('group', name)
  if (fields !== null) return Number(fields[2])
  if (/^\d+$/.test(name)) return Number(name)
  return null
}

function databaseEntry (database: 'passwd' | 'group', name: string): string[] | null {
  let text: string
  try {
    text = execFileSync('getent', [database, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  } catch (err) {
    // getent exits 2 for "not found"; anything else (ENOENT: no getent here) falls back to the file.
    if ((err as { status?: number }).status === 2) return null
    try {
      text = readFileSync(`/etc/${database}`, 'utf8')
    } catch {
      return null
    }
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':')
    if (fields.length >= 4 && (fields[0] === name || fields[2] === name)) return fields
  }
  return null
}

/** True when this process may run children as another user: it runs as root. */
export function canSwitchUser (): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

/**
 * Every `user` and `group` (applications' and tenants'), at --check, start and reload: only root can spawn as another
 * user, so without root each is a problem at its position; as root, a name the system does not know is one.
 */
export function checkRunAs (applications: ApplicationsConfig, problems: ProblemCollector, root = canSwitchUser()): void {
  const keys: Array<{ at: Array<string | number>, kind: 'user' | 'group', name: string }> = []
  if (applications.user != null) keys.push({ at: ['applications', 'user'], kind: 'user', name: applications.user })
  if (applications.group != null) keys.push({ at: ['applications', 'group'], kind: 'group', name: applications.group })
  applications.tenants.forEach((tenant, index) => {
    if (tenant.user != null) keys.push({ at: ['applications', 'tenants', index, 'user'], kind: 'user', name: tenant.user })
    if (tenant.group != null) keys.push({ at: ['applications', 'tenants', index, 'group'], kind: 'group', name: tenant.group })
  })
  for (const { at, kind, name } of keys) {
    if (!root) {
      problems.add(at, `${kind} \`${name}\`: user/group need Navigator to run as root; remove them or run as root`)
    } else if (kind === 'user' ? lookupUser(name) === null : lookupGroup(name) === null) {
      problems.add(at, `there is no ${kind} \`${name}\` on this system: create it (${kind === 'user' ? 'useradd' : 'groupadd'}) or name an existing one`)
    }
  }
}
