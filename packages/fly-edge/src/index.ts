export {
  FlyEdge,
  DEFAULT_MAX_REPLAYS,
  DEFAULT_REPLAY_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  RETRY_BACKOFF_MS,
  MAX_RETRY_BACKOFF_MS,
  type FlyEdgeOptions,
  type RouteEvent,
  type ReplayFailedEvent,
  type EdgeErrorEvent
} from './edge.js'
export {
  MachineRegistry,
  DEFAULT_REGION,
  type Machine,
  type MachineSpec,
  type MachineState,
  type MachineLauncher
} from './machines.js'
export {
  parseReplayAnswer,
  parseReplayJson,
  formatReplaySrc,
  formatReplayFailed,
  REPLAY_CONTENT_TYPE,
  type EdgeReplay,
  type ReplayFailure,
  type ReplayFailureReason,
  type ReplayTransform
} from './replay.js'
export {
  parseReplayCacheRule,
  MIN_REPLAY_CACHE_TTL_SECONDS,
  type ReplayCacheRule,
  type ReplayCacheType,
  type ReplayCacheStatus
} from './replay-cache.js'
export { REGION_ALIASES, regionMatches } from './regions.js'
export * from './errors.js'
export {
  launchMachines,
  randomMachineId,
  DEFAULT_NAVIGATOR_BIN,
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_STOP_GRACE_MS,
  type LaunchOptions,
  type LaunchedMachines
} from './launch.js'
export {
  machineConfigText,
  planPorts,
  PORTS_PER_MACHINE,
  SPARE_TENANT_PORTS,
  type MachineConfigOptions,
  type PortPlan
} from './machine-config.js'
export { checkEdgeConfig, type EdgeCheck, type EdgeCheckOptions } from './check.js'
export { startLocalFly, DEFAULT_EDGE_PORT, DEFAULT_APP, type LocalFly, type LocalFlyOptions } from './local-fly.js'
