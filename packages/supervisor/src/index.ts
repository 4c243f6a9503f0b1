export {
  Supervisor,
  DEFAULT_HOST,
  DEFAULT_STOP_GRACE_MS,
  DEFAULT_DRAIN_MS,
  type UpdateOptions,
  type SupervisorOptions,
  type SpawnEvent,
  type ReadyEvent,
  type ExitEvent,
  type RestartEvent,
  type IdleStopEvent,
  type OutputEvent,
  type ManagedSpawnEvent
} from './supervisor.js'
export { ManagedProcess, managedSignature, type ManagedState, type ManagedStatus } from './managed.js'
export { RestartDelays } from './backoff.js'
export { processSupervisor, type ProcessSupervisorOptions } from './plugin.js'
export { MachineIdle, DEFAULT_API_SOCKET, MACHINES_API_TIMEOUT_MS, type MachineIdleOptions } from './machine-idle.js'
export {
  RESTART_BACKOFF_INITIAL_MS,
  RESTART_BACKOFF_MAX_MS,
  RESTART_BACKOFF_RESET_MS,
  type RestartBackoff,
  type StandaloneState,
  type StandaloneStatus
} from './standalone.js'
export type { TenantState, TenantStatus } from './tenant.js'
export { READINESS_INTERVAL_MS } from './readiness.js'
export { settlesWithin } from './process-group.js'
export { tenantLaunch, type Launch } from './tenant-launch.js'
export { StartupTimeoutError, UnknownTenantError, SpawnFailedError, CannotStartError, StoppedError, InvalidOptionError, HookFailedError } from './errors.js'
export { runHooks, runHooksOrFail, reloadConfigAfter, HOOK_KILL_GRACE_MS, HOOK_OUTPUT_LINES, type HookRun, type HookOutcome, type ReloadConfig } from './hooks.js'
export type { SupervisorLogger } from './logger.js'
