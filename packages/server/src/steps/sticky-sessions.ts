import { createStickySessions, optionsFromConfig } from '@navigator/sticky-sessions'
import type { StickySessions } from '@navigator/sticky-sessions'
import type { StepOptions } from './index.js'

/** `routes.fly.sticky_sessions`: the step of @navigator/sticky-sessions, on the path the client sent; null when off. */
export function stickySessions ({ config, identity, proxy, maintenance, port, log, metrics, status }: StepOptions): StickySessions | null {
  const sticky = config.routes.fly.stickySessions
  if (!sticky.enabled) return null
  // With the status page, its watch counts the decisions (into the metrics when they are on) and notes the fallbacks.
  const watch = status?.watchSticky(sticky) ?? null
  const created = createStickySessions({
    ...optionsFromConfig(sticky),
    maxReplayBody: config.routes.fly.maxReplayBody,
    machineId: identity.machineId ?? undefined,
    appName: identity.appName ?? undefined,
    region: identity.region ?? undefined,
    port,
    proxy: watch === null ? proxy : watch.proxy(proxy),
    maintenance,
    onDecision: watch?.observe ?? metrics?.onStickyDecision
  }, log)
  if (created === null || watch === null) return created
  return { step: watch.step(created.step), close: async () => { await created.close() } }
}
