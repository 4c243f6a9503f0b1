import { promises as dns } from 'node:dns'
import type { FastifyBaseLogger } from 'fastify'
import { isValidMachineId } from '@navigator/fly-replay'

/** Which Machines exist. `has` answers true, false, or undefined when it does not know (treated as existing). */
export interface MachineDiscovery {
  has (machineId: string): boolean | undefined
  /**
   * The last answer is known to be stale (Fly found no candidate for a replay): look again now. Called per request,
   * so an implementation bounds its own lookups.
   */
  refreshNow? (): void
  close? (): void
}

export const DEFAULT_DISCOVERY_REFRESH_MS = 30_000
/**
 * At most one extra lookup a second is triggered by IDs missing from the cached answer or by a replay that found no
 * candidate, so that a flood of such requests cannot hammer DNS.
 */
export const EXTRA_REFRESH_INTERVAL_MS = 1_000

/** Every well-formed ID is taken as existing. */
export const noDiscovery: MachineDiscovery = { has: () => undefined }

/** A fixed set of Machines (the `peers` option). */
export function createStaticDiscovery (machineIds: Iterable<string>): MachineDiscovery {
  const known = new Set(machineIds)
  return { has: (machineId) => known.has(machineId) }
}

export type ResolveTxt = (hostname: string) => Promise<string[][]>

export interface DnsDiscoveryOptions {
  appName: string
  refreshMs?: number
  resolveTxt?: ResolveTxt
  log?: FastifyBaseLogger
}

/**
 * Reads the IDs of an app's Machines from the TXT record of `all.vms.<app>.internal` (Fly lists every deployed
 * Machine there as `<id> <region>` entries separated by commas). Lookups run in the background: `has` never waits,
 * answers from the last good answer (stale on error), and says "unknown" until a first answer arrived.
 */
export function createDnsDiscovery (options: DnsDiscoveryOptions): MachineDiscovery & { refresh (): Promise<void>, refreshNow (): void, close (): void } {
  const hostname = `all.vms.${options.appName}.internal`
  const resolveTxt = options.resolveTxt ?? dns.resolveTxt
  const refreshMs = options.refreshMs ?? DEFAULT_DISCOVERY_REFRESH_MS
  let known: Set<string> | null = null
  let failing = false
  let inFlight: Promise<void> | null = null
  let attemptedAt = 0

  async function load (): Promise<void> {
    try {
      const records = await resolveTxt(hostname)
      const ids = new Set<string>()
      for (const entry of records.map((chunks) => chunks.join('')).join(',').split(',')) {
        const id = entry.trim().split(/\s+/)[0]
        if (isValidMachineId(id)) ids.add(id)
      }
      known = ids
      if (failing) options.log?.info({ hostname }, 'sticky sessions: Machine discovery recovered')
      failing = false
    } catch (err) {
      // Keep the last answer: a DNS hiccup must not make every cookie look stale.
      if (!failing) options.log?.warn({ hostname, code: (err as { code?: string }).code }, 'sticky sessions: Machine discovery failed, keeping the last answer')
      failing = true
    }
  }

  function refresh (): Promise<void> {
    if (inFlight === null) {
      attemptedAt = Date.now()
      inFlight = load().finally(() => { inFlight = null })
    }
    return inFlight
  }

  // A lookup asked for within a second of the last one is not dropped: it runs once that second is over, so a Machine
  // destroyed just after a lookup is still noticed at once rather than at the next periodic refresh.
  let deferred: NodeJS.Timeout | null = null
  function refreshNow (): void {
    const wait = attemptedAt + EXTRA_REFRESH_INTERVAL_MS - Date.now()
    if (wait <= 0) {
      void refresh()
      return
    }
    if (deferred !== null) return
    deferred = setTimeout(() => {
      deferred = null
      void refresh()
    }, wait)
    deferred.unref()
  }

  const timer = setInterval(() => { void refresh() }, refreshMs)
  timer.unref()
  void refresh()

  return {
    has: (machineId) => {
      if (known === null) return undefined
      if (known.has(machineId)) return true
      // A Machine created since the last lookup would otherwise lose its users until the next refresh.
      refreshNow()
      return false
    },
    refresh,
    refreshNow,
    close: () => {
      clearInterval(timer)
      if (deferred !== null) clearTimeout(deferred)
    }
  }
}
