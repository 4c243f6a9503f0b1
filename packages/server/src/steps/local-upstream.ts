import type { ForwardOptions, RequestContext } from '@navigator/proxy'
import type { StepOptions } from './index.js'

const UPSTREAM_HOST = '127.0.0.1'

/** Proxying to a process of this Machine (a tenant, a standalone server), shared by their two steps. */
export interface LocalUpstream {
  /** HTTP, on the hot path: the proxy answers, and the request counts for `name` until its response closes. */
  relay (ctx: RequestContext, name: string, port: number, options?: ForwardOptions): void
  /** The same, resolving once the answer is under way (after a wait for the process). */
  forward (ctx: RequestContext, name: string, port: number): Promise<void>
  /** An upgrade: the WebSocket counts for `name` (and for the Machine's idleness) until it closes. */
  relayWebSocket (ctx: RequestContext, name: string, port: number, onUnreachable?: () => unknown): Promise<void>
}

export function createLocalUpstream ({ processes, proxy, webSockets }: StepOptions): LocalUpstream {
  const origins = new Map<number, string>()
  function originOf (port: number): string {
    let origin = origins.get(port)
    if (origin === undefined) {
      origin = `http://${UPSTREAM_HOST}:${port}`
      origins.set(port, origin)
    }
    return origin
  }

  return {
    relay (ctx, name, port, options) {
      ctx.res.on('close', processes.trackRequest(name))
      proxy.relay(ctx, { origin: originOf(port), path: ctx.upstreamPath }, options)
    },
    async forward (ctx, name, port) {
      ctx.res.on('close', processes.trackRequest(name))
      await proxy.forward(ctx, { origin: originOf(port), path: ctx.upstreamPath })
    },
    async relayWebSocket (ctx, name, port, onUnreachable) {
      await webSockets.relay(ctx, {
        host: UPSTREAM_HOST,
        port,
        path: ctx.upstreamPath,
        release: processes.trackWebSocket(name),
        onUnreachable
      })
    }
  }
}
