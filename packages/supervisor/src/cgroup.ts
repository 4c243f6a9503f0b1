// memory_limit: each tenant with one runs in a cgroup v2 child of Navigator's own cgroup, with memory.max set.

import { accessSync, constants, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SupervisorLogger } from './logger.js'

/** Where cgroup v2 is mounted on Linux. */
export const CGROUP_V2_MOUNT = '/sys/fs/cgroup'

/** Navigator's own cgroup directory, from /proc/self/cgroup (the `0::<path>` line of cgroup v2); null without one. */
export function ownCgroupDir (mount = CGROUP_V2_MOUNT): string | null {
  let text: string
  try {
    text = readFileSync('/proc/self/cgroup', 'utf8')
  } catch {
    return null
  }
  const line = text.split('\n').find((entry) => entry.startsWith('0::'))
  return line === undefined ? null : join(mount, line.slice(3))
}

/**
 * Creates, fills and removes the tenants' cgroups. Whether limits can be enforced here is found out once, on first
 * need; when they cannot, one warning says why and every limit is left unenforced.
 */
export class MemoryLimits {
  private usable: { dir: string } | { reason: string } | null = null

  /** `dir`: the cgroup the tenants' cgroups are created in (Navigator's own); null = find it. */
  constructor (private readonly logger: SupervisorLogger, private readonly dir: string | null) {}

  /** Checks (once) whether limits can be enforced, and warns once when they cannot. */
  check (): void {
    if (this.usable !== null) return
    const reason = this.problem()
    this.usable = reason === null ? { dir: this.dir ?? ownCgroupDir() as string } : { reason }
    if (reason !== null) this.logger.warn({ reason }, `memory_limit is not enforced: ${reason}`)
  }

  /**
   * Puts `pid` in a cgroup of its own for tenant `name` with memory.max = `bytes`. Returns the cgroup's directory, or
   * null when limits are not enforced here or this one could not be set up (logged).
   */
  apply (name: string, pid: number, bytes: number): string | null {
    this.check()
    if (this.usable === null || !('dir' in this.usable)) return null
    // One cgroup per process, named for the tenant and its pid: a replaced tenant still draining keeps its own
    // limit, and two names that read the same once cleaned (`a/b`, `a_b`) never share one.
    const dir = join(this.usable.dir, `navigator-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${pid}`)
    try {
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'memory.max'), `${bytes}\n`)
      writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`)
    } catch (err) {
      this.logger.warn({ process: name, cgroup: dir, reason: (err as Error).message }, 'memory_limit of this tenant could not be set; it runs without one')
      this.remove(dir)
      return null
    }
    this.logger.info({ process: name, cgroup: dir, memoryMax: bytes }, 'tenant memory limit set')
    return dir
  }

  /** Removes a tenant's cgroup once its processes are gone. */
  remove (dir: string): void {
    try {
      rmdirSync(dir)
    } catch (err) {
      this.logger.debug({ cgroup: dir, reason: (err as Error).message }, 'tenant cgroup not removed')
    }
  }

  private problem (): string | null {
    if (process.platform !== 'linux') return `cgroups exist on Linux only (this is ${process.platform})`
    const dir = this.dir ?? ownCgroupDir()
    if (dir === null) return 'Navigator is not in a cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup)'
    let controllers: string
    try {
      controllers = readFileSync(join(dir, 'cgroup.controllers'), 'utf8')
    } catch {
      return `${dir} is not a cgroup v2 directory (cgroup v1 or hybrid mount, or cgroups not mounted)`
    }
    if (!controllers.split(/\s+/).includes('memory')) return `the memory controller is not available in ${dir}`
    try {
      accessSync(dir, constants.W_OK)
    } catch {
      return `${dir} is not writable (Navigator needs root, or a delegated cgroup)`
    }
    try {
      const enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/)
      if (!enabled.includes('memory')) writeFileSync(join(dir, 'cgroup.subtree_control'), '+memory\n')
    } catch (err) {
      return `the memory controller cannot be enabled for child cgroups of ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`
    }
    return null
  }
}
