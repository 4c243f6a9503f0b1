import createError from '@fastify/error'

/** A tenant did not answer its health check within `startupTimeoutMs`. */
export const StartupTimeoutError = createError<'NAV_SUPERVISOR_STARTUP_TIMEOUT', 503, [string, number]>(
  'NAV_SUPERVISOR_STARTUP_TIMEOUT',
  'Tenant "%s" was not ready within %d ms',
  503
)

/** The name is neither a configured tenant nor a standalone server. */
export const UnknownTenantError = createError<'NAV_SUPERVISOR_UNKNOWN_TENANT', 404, [string]>(
  'NAV_SUPERVISOR_UNKNOWN_TENANT',
  'No tenant or standalone server is named "%s"',
  404
)

/** The process could not be spawned, or exited before it became ready. */
export const SpawnFailedError = createError<'NAV_SUPERVISOR_SPAWN_FAILED', 503, [string, string]>(
  'NAV_SUPERVISOR_SPAWN_FAILED',
  'Process "%s" could not be started: %s',
  503
)

/**
 * The process can never be spawned as configured (its command or working directory is missing, or not executable):
 * trying again will not help until the files or the configuration change.
 */
export const CannotStartError = createError<'NAV_SUPERVISOR_CANNOT_START', 502, [string, string]>(
  'NAV_SUPERVISOR_CANNOT_START',
  'Process "%s" cannot start: %s',
  502
)

/** The tenant (or the whole supervisor) was stopped while a caller waited for it. */
export const StoppedError = createError<'NAV_SUPERVISOR_STOPPED', 503, [string]>(
  'NAV_SUPERVISOR_STOPPED',
  'Process "%s" was stopped before it became ready',
  503
)

/** A constructor option is missing or has the wrong type. */
export const InvalidOptionError = createError<'NAV_SUPERVISOR_INVALID_OPTION', 500, [string]>(
  'NAV_SUPERVISOR_INVALID_OPTION',
  'Invalid option: %s',
  500
)

/** A hook that must succeed (server.start) failed: it exited non-zero, was killed at its timeout, or could not start. */
export const HookFailedError = createError<'NAV_SUPERVISOR_HOOK_FAILED', 500, [string, string]>(
  'NAV_SUPERVISOR_HOOK_FAILED',
  'Hook %s failed: %s',
  500
)
