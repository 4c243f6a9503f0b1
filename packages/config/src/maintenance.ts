// `maintenance`, the Go Navigator's maintenance mode and page.

import { resolve } from 'node:path'
import type { ProblemCollector } from './problems.js'
import type { MaintenanceConfig } from './types.js'

export function normaliseMaintenance (maintenance: Record<string, unknown>): MaintenanceConfig {
  return { enabled: maintenance.enabled === true }
}

/**
 * `maintenance.page`, or null: a file in public_dir ("/503.html" is public_dir's 503.html, as the Go Navigator reads
 * it). It is server.maintenance_page under its Go name, so giving both is a problem.
 */
export function maintenancePageOf (maintenance: Record<string, unknown>, serverPage: unknown, publicDir: string, problems: ProblemCollector): string | null {
  if (typeof maintenance.page !== 'string') return null
  if (typeof serverPage === 'string') {
    problems.add(['maintenance', 'page'], 'server.maintenance_page is given too: give the maintenance page once')
  }
  return resolve(publicDir, maintenance.page.replace(/^\/+/, ''))
}
