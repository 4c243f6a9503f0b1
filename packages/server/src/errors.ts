import createError from '@fastify/error'

/** LOG_LEVEL names no pino level. */
export const InvalidLogLevelError = createError<'NAV_SERVER_INVALID_LOG_LEVEL', 500, [string, string]>(
  'NAV_SERVER_INVALID_LOG_LEVEL',
  'LOG_LEVEL must be one of %s; got %s',
  500
)
