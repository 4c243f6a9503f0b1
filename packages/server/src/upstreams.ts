import { compilePathPattern } from '@navigator/config'
import type { ApplicationsConfig, StandaloneServerConfig, TenantConfig } from '@navigator/config'

export type Upstream =
  | { kind: 'standalone', server: StandaloneServerConfig }
  | { kind: 'tenant', tenant: TenantConfig }

/**
 * Steps 6 and 7 of the pipeline as one lookup, compiled once per config:
 * the first standalone server whose match_path matches, else the tenant with
 * the longest path prefix (a prefix matches itself and anything below it,
 * "/" matches everything), else null.
 */
export function createUpstreamRouter (applications: ApplicationsConfig): (forwardedPath: string) => Upstream | null {
  const standalone = applications.standaloneServers.map((server) => ({
    upstream: { kind: 'standalone', server } as Upstream,
    matches: compilePathPattern(server.matchPath)
  }))
  const tenants = [...applications.tenants]
    .sort((a, b) => b.path.length - a.path.length)
    .map((tenant) => ({
      upstream: { kind: 'tenant', tenant } as Upstream,
      prefix: tenant.path,
      below: tenant.path === '/' ? '/' : tenant.path + '/'
    }))

  return function findUpstream (forwardedPath) {
    for (const candidate of standalone) {
      if (candidate.matches(forwardedPath)) return candidate.upstream
    }
    for (const candidate of tenants) {
      if (forwardedPath === candidate.prefix || forwardedPath.startsWith(candidate.below)) return candidate.upstream
    }
    return null
  }
}
