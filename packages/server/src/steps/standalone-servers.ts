import { compilePathPattern } from '@navigator/config'
import { ANSWERED, isUpgrade, NEXT } from '@navigator/proxy'
import type { ForwardOptions, RequestContext, Step, StepResult } from '@navigator/proxy'
import { createLocalUpstream } from './local-upstream.js'
import type { StepOptions } from './index.js'

/**
 * `applications.standalone_servers`: the first whose `match_path` matches the forwarded path gets the request, HTTP
 * or WebSocket. One that is down (crashed, backing off) or refuses the connection is answered with the
 * maintenance page at once, not with a connection error.
 */
export function standaloneServers (options: StepOptions): Step | null {
  const { config, processes, maintenance } = options
  if (config.applications.standaloneServers.length === 0) return null
  const upstream = createLocalUpstream(options)
  const toMaintenance: ForwardOptions = Object.freeze({ onUnreachable: (err: Error, ctx: RequestContext) => { maintenance(ctx) } })
  const servers = config.applications.standaloneServers.map((server) => ({
    name: server.name,
    port: server.port,
    matches: compilePathPattern(server.matchPath)
  }))

  return {
    name: 'standalone-servers',
    run (ctx): StepResult {
      const server = firstMatch(servers, ctx.forwardedPath)
      if (server === null) return NEXT
      if (processes.standaloneStatus(server.name).state !== 'running') {
        maintenance(ctx)
        return ANSWERED
      }
      if (isUpgrade(ctx.req)) {
        return upstream.relayWebSocket(ctx, server.name, server.port, () => { maintenance(ctx) }).then(() => ANSWERED)
      }
      upstream.relay(ctx, server.name, server.port, toMaintenance)
      return ANSWERED
    }
  }
}

function firstMatch<S extends { matches: (path: string) => boolean }> (servers: readonly S[], path: string): S | null {
  for (const server of servers) {
    if (server.matches(path)) return server
  }
  return null
}
