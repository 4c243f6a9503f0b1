import type { IncomingHttpHeaders } from 'node:http'

/** Fly's proxy refuses to replay a request whose body is this large or larger. */
export const MAX_REPLAY_BODY_BYTES = 1_048_576

const DIGITS = /^\d{1,16}$/

/**
 * True when the request body is known to be under 1 MiB: no body at all, or a Content-Length below the limit.
 * A body of unknown length (Transfer-Encoding) or an unreadable Content-Length is not replayable.
 */
export function isReplayable (headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return false
  const length = headers['content-length']
  if (length === undefined) return true
  return DIGITS.test(length) && Number(length) < MAX_REPLAY_BODY_BYTES
}
