import { createStickySessions, optionsFromConfig } from '@navigator/sticky-sessions'
import type { StickySessions } from '@navigator/sticky-sessions'
import type { StepOptions } from './index.js'

/** `routes.fly.sticky_sessions`: the step of @navigator/sticky-sessions, on the path the client sent; null when off. */
export function stickySessions ({ config, identity, proxy, maintenance, port, log, metrics, status }: StepOptions): StickySessions | null {
  const sticky = config.routes.fly.stickySessions
  if (!sticky.enabled) return null
  return createStickySessions({
    ...optionsFromConfig(sticky),
    maxReplayBody: config.routes.fly.maxReplayBody,
    machineId: identity.machineId ?? undefined,
    appName: identity.appName ?? undefined,
    region: identity.region ?? undefined,
    port,
    proxy,
    maintenance,
    // With the status page, its observer counts the decisions (into the metrics when they are on) and notes fallbacks.
    onDecision: status?.stickyObserver() ?? metrics?.onStickyDecision
  }, log)
}
