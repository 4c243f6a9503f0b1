import type { FastifyReply, FastifyRequest } from 'fastify'
import { DEFAULT_RETRY_AFTER_SECONDS } from './options.js'

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable</title></head>
<body><h1>Temporarily unavailable</h1><p>The server holding your session is not reachable right now. Please try again in a moment.</p></body></html>
`

/** The built-in maintenance answer: 503, not cached, with Retry-After so the browser comes back. */
export function defaultMaintenance (_request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply
    .code(503)
    .header('cache-control', 'no-store')
    .header('retry-after', String(DEFAULT_RETRY_AFTER_SECONDS))
    .type('text/html; charset=utf-8')
    .send(PAGE)
}
