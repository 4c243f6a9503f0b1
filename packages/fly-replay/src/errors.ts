import createError from '@fastify/error'

export const UpstreamUnreachableError = createError(
  'NAV_FLY_REPLAY_UPSTREAM_UNREACHABLE',
  'The upstream server could not be reached',
  502
)

export const UpstreamTimeoutError = createError(
  'NAV_FLY_REPLAY_UPSTREAM_TIMEOUT',
  'The upstream server did not answer in time',
  504
)

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
