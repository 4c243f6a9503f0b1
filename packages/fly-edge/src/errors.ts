import createError from '@fastify/error'

// Errors the edge answers to a client (as a text/plain response carrying the code in
// `fly-edge-error`) or throws to a caller of the programmatic API.

export const NAV_FLY_EDGE_INVALID_OPTION = createError(
  'NAV_FLY_EDGE_INVALID_OPTION', 'Invalid fly-edge option: %s', 500, TypeError)

export const NAV_FLY_EDGE_UNKNOWN_MACHINE = createError(
  'NAV_FLY_EDGE_UNKNOWN_MACHINE', 'No Machine with id %s', 500)

export const NAV_FLY_EDGE_NO_MACHINE = createError(
  'NAV_FLY_EDGE_NO_MACHINE', 'No started Machine can serve app %s', 503)

export const NAV_FLY_EDGE_UNREACHABLE = createError(
  'NAV_FLY_EDGE_UNREACHABLE', 'Could not reach %s', 502)

// Fly documents no fallback for `fly-force-instance-id` ("No fallback if Machine is ultimately unavailable",
// https://fly.io/docs/networking/dynamic-request-routing/#the-fly-force-instance-id-header) and no status code;
// the message names the proxy error Fly logs for the case (https://fly.io/docs/monitoring/error-codes/).
export const NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE = createError(
  'NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE', 'fly-force-instance-id %s: %s', 502)

export const NAV_FLY_EDGE_INVALID_REPLAY = createError(
  'NAV_FLY_EDGE_INVALID_REPLAY', 'Machine %s answered with an invalid fly-replay: %s', 502)

export const NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE = createError(
  'NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE',
  'Machine %s asked for a replay, but the request body is over 1 MB (1,000,000 bytes) or of unknown length and cannot be replayed',
  502)

export const NAV_FLY_EDGE_REPLAY_ON_FALLBACK = createError(
  'NAV_FLY_EDGE_REPLAY_ON_FALLBACK', 'Machine %s answered a fallback request with fly-replay, which is not allowed', 502)

export const NAV_FLY_EDGE_TOO_MANY_REPLAYS = createError(
  'NAV_FLY_EDGE_TOO_MANY_REPLAYS', 'Request replayed more than %s times', 502)

export const NAV_FLY_EDGE_LAUNCH_FAILED = createError(
  'NAV_FLY_EDGE_LAUNCH_FAILED', 'Machine %s did not start: %s', 500)
