import createError from '@fastify/error'

export const UpstreamUnreachableError = createError(
  'NAV_PROXY_UPSTREAM_UNREACHABLE',
  'The upstream server could not be reached',
  502
)

export const UpstreamTimeoutError = createError(
  'NAV_PROXY_UPSTREAM_TIMEOUT',
  'The upstream server did not answer in time',
  504
)

export const InvalidOptionError = createError(
  'NAV_PROXY_INVALID_OPTION',
  'Invalid option %s: %s',
  500
)
