import createError from '@fastify/error'

/** LOG_LEVEL names no pino level. */
export const InvalidLogLevelError = createError<'NAV_SERVER_INVALID_LOG_LEVEL', 500, [string, string]>(
  'NAV_SERVER_INVALID_LOG_LEVEL',
  'LOG_LEVEL must be one of %s; got %s',
  500
)

/** NAVIGATOR_UPSTREAM_TIMEOUT is not a Go duration above zero. */
export const InvalidUpstreamTimeoutError = createError<'NAV_SERVER_INVALID_UPSTREAM_TIMEOUT', 500, [string]>(
  'NAV_SERVER_INVALID_UPSTREAM_TIMEOUT',
  'NAVIGATOR_UPSTREAM_TIMEOUT must be a duration above zero such as 30s or 2m; got %s',
  500
)

/** NAVIGATOR_CABLE_PING_INTERVAL (or the cablePingIntervalMs option) is not a duration above zero. */
export const InvalidCablePingIntervalError = createError<'NAV_SERVER_INVALID_CABLE_PING_INTERVAL', 500, [string]>(
  'NAV_SERVER_INVALID_CABLE_PING_INTERVAL',
  'NAVIGATOR_CABLE_PING_INTERVAL must be a duration above zero such as 30s; got %s',
  500
)
