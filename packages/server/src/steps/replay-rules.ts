import type { ReplayTarget } from '@navigator/config'
import { createReplayRules } from '@navigator/fly-replay'
import type { Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'

/** `routes.fly.replay`: the rules of @navigator/fly-replay, on the path the client sent. */
export function replayRules ({ config, identity, proxy, maintenance, port }: StepOptions): Step | null {
  if (config.routes.fly.replay.length === 0) return null
  const peers = config.routes.fly.stickySessions.peers
  return createReplayRules({
    rules: config.routes.fly.replay,
    machineId: identity.machineId ?? undefined,
    appName: identity.appName ?? undefined,
    region: identity.region ?? undefined,
    proxy,
    port,
    maxReplayBody: config.routes.fly.maxReplayBody,
    maintenance,
    // Outside Fly (tests, other clusters) a Machine's address comes from the peers map.
    resolveAddress: Object.keys(peers).length === 0 ? undefined : peerAddress(peers)
  }).step
}

function peerAddress (peers: Record<string, string>): (target: ReplayTarget) => string | null {
  return (target) => target.kind === 'machine' ? peers[target.machine] ?? null : null
}
