// applications.user / group and a tenant's own: the uid and gid a tenant is spawned with.

import type { ApplicationsConfig, TenantConfig } from '@navigator/config'
import { canSwitchUser, lookupGroup, lookupUser } from '@navigator/config'

/** The ids to spawn with, or null to run as Navigator; `problem` says why that cannot be done (a permanent failure). */
export type RunAs = { uid?: number, gid?: number, problem?: undefined } | { problem: string }

/** Names found before (a lookup spawns getent, some milliseconds that a cold start need not pay twice); misses are not kept. */
const users = new Map<string, { uid: number, gid: number }>()
const groups = new Map<string, number>()

/**
 * The tenant's user and group (its own, else the applications'): a user alone runs with that user's primary group,
 * a group alone keeps Navigator's user. The config loader has checked them already at start and reload; this is the
 * check for a supervisor given a configuration that was not.
 */
export function runAs (applications: ApplicationsConfig, tenant: TenantConfig): RunAs | null {
  const user = tenant.user ?? applications.user ?? null
  const group = tenant.group ?? applications.group ?? null
  if (user === null && group === null) return null
  if (!canSwitchUser()) return { problem: 'user/group need Navigator to run as root; remove them or run as root' }
  const ids: { uid?: number, gid?: number } = {}
  if (user !== null) {
    const found = users.get(user) ?? lookupUser(user)
    if (found === null) return { problem: `there is no user \`${user}\` on this system` }
    users.set(user, found)
    ids.uid = found.uid
    ids.gid = found.gid
  }
  if (group !== null) {
    const gid = groups.get(group) ?? lookupGroup(group)
    if (gid === null) return { problem: `there is no group \`${group}\` on this system` }
    groups.set(group, gid)
    ids.gid = gid
  }
  return ids
}
