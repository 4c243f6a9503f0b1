import { STATUS_CODES } from 'node:http'
import type { ServerResponse } from 'node:http'
import type { RequestContext } from './request-context.js'

/** Response headers as writeHead takes them: [name, value, name, value, ...], names in lower case. */
export type HeaderList = readonly string[]

/**
 * Answers a request in full: `status`, the headers steps added, `headers`, and `body` with its Content-Length.
 * With a Fastify reply the answer goes through it (the app's onSend hooks run); without one it is written in one
 * writeHead, with the same headers in the same order.
 */
export function answer (ctx: RequestContext, status: number, headers: HeaderList, body: string | Buffer): void {
  const reply = ctx.reply
  if (reply !== null) {
    reply.code(status)
    for (let i = 0; i < headers.length; i += 2) reply.header(headers[i], headers[i + 1])
    reply.send(body)
    return
  }
  const length = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length)
  const pending = ctx.responseHeaders
  ctx.res.writeHead(status, pending === null ? [...headers, 'content-length', length] : [...headerList(pending), ...headers, 'content-length', length])
  ctx.res.end(body)
}

/**
 * Answers with an error of this package (502, 504): through Fastify's error handler when there is a reply, else
 * as Fastify's default error handler answers it (its status, the pending headers and a JSON body
 * `{ statusCode, code, error, message }`). Neither logs: the caller says what happened.
 */
export function answerError (ctx: RequestContext, err: Error): void {
  if (ctx.reply !== null) ctx.reply.send(err)
  else sendErrorAnswer(ctx.res, err, ctx.responseHeaders)
}

/** `answerError` on a bare response, with the headers meant for it. */
export function sendErrorAnswer (
  res: ServerResponse,
  err: Error & { statusCode?: number, code?: string },
  headers: Readonly<Record<string, unknown>> | null = null
): void {
  const statusCode = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500
  const body = JSON.stringify({ statusCode, code: err.code, error: STATUS_CODES[statusCode], message: err.message })
  const out = headerList(headers)
  out.push('content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)))
  res.writeHead(statusCode, out)
  res.end(body)
}

/** Headers as the flat [name, value, ...] list writeHead takes; a list value becomes one header per value. */
function headerList (headers: Readonly<Record<string, unknown>> | null): string[] {
  const out: string[] = []
  if (headers === null) return out
  for (const name in headers) {
    const value = headers[name]
    if (Array.isArray(value)) for (const each of value) out.push(name, String(each))
    else if (value !== undefined) out.push(name, String(value))
  }
  return out
}

/** Seconds a client is told to wait before it retries a maintenance answer. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5

/** Answers a request that cannot be served now (a Machine or process unavailable); see createMaintenanceResponder. */
export type MaintenanceResponder = (ctx: RequestContext) => void

/** The maintenance answer: 503 with `page`, never cached, and Retry-After so the browser comes back. */
export function createMaintenanceResponder (page: string | Buffer, retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS): MaintenanceResponder {
  const headers = Object.freeze([
    'cache-control', 'no-store',
    'retry-after', String(retryAfterSeconds),
    'content-type', 'text/html; charset=utf-8'
  ])
  return function maintenance (ctx) {
    answer(ctx, 503, headers, page)
  }
}
