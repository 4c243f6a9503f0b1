import createError from '@fastify/error'

export const InvalidReplayFieldError = createError(
  'NAV_FLY_REPLAY_INVALID_FIELD',
  'Invalid fly-replay field %s: %s',
  500
)

export const InvalidOptionError = createError(
  'NAV_FLY_REPLAY_INVALID_OPTION',
  'Invalid option %s: %s',
  500
)
