import { compilePathPattern } from '@navigator/config'
import { ANSWERED, isUpgrade, NEXT } from '@navigator/proxy'
import type { ForwardOptions, RequestContext, Step, StepResult } from '@navigator/proxy'
import { createLocalUpstream } from './local-upstream.js'
import type { StepOptions } from './index.js'

/**
 * `applications.standalone_servers`: the first whose `match_path` matches the forwarded path gets the request, HTTP
 * or WebSocket. A request that arrives while the server starts (at boot, or after a restart) waits for it, up to
 * `applications.startup_timeout`, as a tenant request does. One in backoff (crashed, or its port held by another
 * process) or that refuses the connection is answered with the maintenance page at once.
 */
export function standaloneServers (options: StepOptions): Step | null {
  const { config, processes, maintenance, cannotStart } = options
  if (config.applications.standaloneServers.length === 0) return null
  const startupTimeoutMs = config.applications.startupTimeoutMs
  const toMaintenance: ForwardOptions = Object.freeze({ onUnreachable: (_err: Error, ctx: RequestContext) => { maintenance(ctx) } })
  const upstream = createLocalUpstream(options, 'standalone', toMaintenance)
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
      const { state, cannotStart: why } = processes.standaloneStatus(server.name)
      if (state === 'running') return send(ctx, server)
      if (state !== 'starting') {
        if (why !== null) cannotStart(ctx)
        else maintenance(ctx)
        return ANSWERED
      }
      return processes.whenStandaloneRunning(server.name, startupTimeoutMs).then((running) => {
        if (ctx.res.destroyed) return ANSWERED
        if (running) return send(ctx, server)
        maintenance(ctx)
        return ANSWERED
      })
    }
  }

  function send (ctx: RequestContext, server: { name: string, port: number }): StepResult {
    if (isUpgrade(ctx.req)) {
      return upstream.relayWebSocket(ctx, server.name, server.port, () => { maintenance(ctx) }).then(() => ANSWERED)
    }
    upstream.relay(ctx, server.name, server.port)
    return ANSWERED
  }
}

function firstMatch<S extends { matches: (path: string) => boolean }> (servers: readonly S[], path: string): S | null {
  for (const server of servers) {
    if (server.matches(path)) return server
  }
  return null
}
