import type { IncomingHttpHeaders } from 'node:http'
import { DEFAULT_MAX_REPLAY_BODY } from '@navigator/config'

/**
 * Fly's replay limit: its documentation says requests larger than 1MB cannot be replayed, and 1 MB is 1,000,000
 * bytes. The default of `routes.fly.max_replay_body` (`DEFAULT_MAX_REPLAY_BODY`), and the limit the local edge keeps.
 */
export const MAX_REPLAY_BODY_BYTES = DEFAULT_MAX_REPLAY_BODY

const DIGITS = /^\d{1,16}$/

/**
 * True when the request body is known to be at most `maxBody` bytes: no body at all, or a Content-Length up to the
 * limit. A body of unknown length (Transfer-Encoding) or an unreadable Content-Length is not replayable.
 */
export function isReplayable (headers: IncomingHttpHeaders, maxBody: number = DEFAULT_MAX_REPLAY_BODY): boolean {
  if (headers['transfer-encoding'] !== undefined) return false
  const length = headers['content-length']
  if (length === undefined) return true
  return DIGITS.test(length) && Number(length) <= maxBody
}
