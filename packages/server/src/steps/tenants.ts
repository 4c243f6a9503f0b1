import { ANSWERED, isUpgrade, NEXT } from '@navigator/proxy'
import type { RequestContext, Step, StepOutcome } from '@navigator/proxy'
import { createLocalUpstream } from './local-upstream.js'
import type { StepOptions } from './index.js'

/**
 * `applications.tenants`: the tenant with the longest path prefix that the forwarded path is, or is below ("/"
 * takes everything), gets the request. A ready tenant is proxied at once, without a promise; one that is stopped
 * or starting is started or waited for. The maintenance page (503) answers when it did not start in time; a 502 page
 * when it can never start as configured (its command or working directory missing).
 */
export function tenants (options: StepOptions): Step | null {
  const { config, processes, maintenance, cannotStart } = options
  if (config.applications.tenants.length === 0) return null
  const upstream = createLocalUpstream(options, 'tenant')
  const owner = tenantRouter(config.applications.tenants)

  async function whenReady (ctx: RequestContext, name: string): Promise<StepOutcome> {
    let port: number
    try {
      port = (await processes.ensureTenant(name)).port
    } catch (err) {
      // The supervisor has logged why a spawn failed; a tenant that can never start is not promised to come back.
      if ((err as { code?: string }).code === 'NAV_SUPERVISOR_CANNOT_START') {
        cannotStart(ctx)
        return ANSWERED
      }
      ctx.log.warn({ tenant: name, err: (err as Error).message }, 'tenant unavailable')
      maintenance(ctx)
      return ANSWERED
    }
    if (isUpgrade(ctx.req)) await upstream.relayWebSocket(ctx, name, port)
    // A client that left while the tenant started is neither proxied nor counted (its 'close' has been emitted).
    else if (!ctx.res.destroyed) await upstream.forward(ctx, name, port)
    return ANSWERED
  }

  return {
    name: 'tenants',
    run (ctx) {
      const tenant = owner(ctx.forwardedPath)
      if (tenant === null) return NEXT
      const port = processes.readyPort(tenant.name)
      if (port === null || isUpgrade(ctx.req)) return whenReady(ctx, tenant.name)
      upstream.relay(ctx, tenant.name, port)
      return ANSWERED
    }
  }
}

/**
 * The tenant a forwarded path is routed to: the one with the longest path prefix that the path is, or is below ("/"
 * takes everything); null for none. The tenants step routes with it, and so do the steps that act for a tenant
 * before it (its static files, its bot detection).
 */
export function tenantRouter<T extends { path: string }> (tenants: readonly T[]): (path: string) => T | null {
  const byLongestPrefix = [...tenants]
    .sort((a, b) => b.path.length - a.path.length)
    .map((tenant) => ({ tenant, prefix: tenant.path, below: tenant.path === '/' ? '/' : tenant.path + '/' }))
  return function owner (path) {
    for (const each of byLongestPrefix) {
      if (path === each.prefix || path.startsWith(each.below)) return each.tenant
    }
    return null
  }
}
