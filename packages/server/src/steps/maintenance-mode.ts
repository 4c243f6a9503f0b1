import { ANSWERED, type Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'

/**
 * `maintenance.enabled`: every request that comes this far gets the maintenance page (503). It stands after the
 * static files, the redirects, the health check and the Fly-Replay rules, which keep working, and before everything
 * that would reach an app: the sticky sessions, the reverse proxies, the standalone servers and the tenants.
 */
export function maintenanceMode ({ config, maintenance }: StepOptions): Step | null {
  if (!config.maintenance.enabled) return null
  return {
    name: 'maintenance-mode',
    run (ctx) {
      maintenance(ctx)
      return ANSWERED
    }
  }
}
