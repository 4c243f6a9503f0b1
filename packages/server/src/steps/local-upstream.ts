import type { ForwardOptions, RequestContext } from '@navigator/proxy'
import type { StepOptions } from './index.js'

const UPSTREAM_HOST = '127.0.0.1'

/** Proxying to a process of this Machine (a tenant, a standalone server), shared by their two steps. */
export interface LocalUpstream {
  /** HTTP, on the hot path: the proxy answers, and the request counts for `name` until its response closes. */
  relay (ctx: RequestContext, name: string, port: number): void
  /** The same, resolving once the answer is under way (after a wait for the process). */
  forward (ctx: RequestContext, name: string, port: number): Promise<void>
  /** An upgrade: the WebSocket counts for `name` (and for the Machine's idleness) until it closes. */
  relayWebSocket (ctx: RequestContext, name: string, port: number, onUnreachable?: () => unknown): Promise<void>
}

/**
 * `base`: the forward options of every request of the step (the standalone servers' maintenance fallback). With
 * metrics on, each process gets them once with its latency and failure hooks added: no object per request.
 */
export function createLocalUpstream ({ processes, proxy, webSockets, metrics }: StepOptions, kind: 'tenant' | 'standalone', base?: ForwardOptions): LocalUpstream {
  const origins = new Map<number, string>()
  const optionsByName = new Map<string, ForwardOptions>()
  function optionsFor (name: string): ForwardOptions | undefined {
    if (metrics === null) return base
    let options = optionsByName.get(name)
    if (options === undefined) {
      options = Object.freeze({ ...base, ...metrics.upstreamHooks(kind, name) })
      optionsByName.set(name, options)
    }
    return options
  }
  function originOf (port: number): string {
    let origin = origins.get(port)
    if (origin === undefined) {
      origin = `http://${UPSTREAM_HOST}:${port}`
      origins.set(port, origin)
    }
    return origin
  }

  return {
    relay (ctx, name, port) {
      ctx.res.on('close', processes.trackRequest(name))
      proxy.relay(ctx, { origin: originOf(port), path: ctx.upstreamPath }, optionsFor(name))
    },
    async forward (ctx, name, port) {
      ctx.res.on('close', processes.trackRequest(name))
      await proxy.forward(ctx, { origin: originOf(port), path: ctx.upstreamPath }, optionsFor(name))
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
