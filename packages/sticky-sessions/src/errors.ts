import createError from '@fastify/error'

export const InvalidStickyOptionError = createError(
  'NAV_STICKY_SESSIONS_INVALID_OPTION',
  'Invalid sticky sessions option %s: %s',
  500,
  TypeError
)
