export {
  FlyEdge,
  DEFAULT_MAX_REPLAYS,
  DEFAULT_REPLAY_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  CONNECT_ATTEMPTS,
  type FlyEdgeOptions,
  type RouteEvent,
  type ReplayFailedEvent,
  type EdgeErrorEvent
} from './edge.js'
export {
  MachineRegistry,
  DEFAULT_REGION,
  isValidMachineId,
  type Machine,
  type MachineSpec,
  type MachineState,
  type MachineLauncher
} from './machines.js'
export {
  parseReplayHeader,
  parseReplayJson,
  parseReplayDuration,
  formatReplaySrc,
  formatReplayFailed,
  MAX_REPLAY_BODY_BYTES,
  REPLAY_CONTENT_TYPE,
  type EdgeReplay,
  type ReplayFailure,
  type ReplayFailureReason
} from './replay.js'
export { REGION_ALIASES, regionMatches } from './regions.js'
export * from './errors.js'
