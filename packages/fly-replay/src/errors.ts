import { STATUS_CODES } from 'node:http'
import type { ServerResponse } from 'node:http'
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

/**
 * Answers `err` (one of the errors above) on a response Fastify does not own, exactly as Fastify's default error
 * handler answers it: the error's status, the headers already meant for the response (`headers`: Fastify keeps
 * those set on a reply, the sticky cookie among them) and a JSON body `{ statusCode, code, error, message }`. The
 * caller logs (Navigator's Fastify logs no line of its own for a 5xx: its request logging is off).
 */
export function sendErrorAnswer (
  res: ServerResponse,
  err: Error & { statusCode?: number, code?: string },
  headers: Readonly<Record<string, string>> | null = null
): void {
  const statusCode = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500
  const body = JSON.stringify({ statusCode, code: err.code, error: STATUS_CODES[statusCode], message: err.message })
  const out: string[] = []
  if (headers !== null) for (const name in headers) out.push(name, headers[name])
  out.push('content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)))
  res.writeHead(statusCode, out)
  res.end(body)
}
