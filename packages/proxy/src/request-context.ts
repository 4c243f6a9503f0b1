import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'

/** Response headers by lower-case name; a name may carry several values (Set-Cookie). */
export type ResponseHeaders = Readonly<Record<string, string | readonly string[]>>

/**
 * One request on its way through a pipeline of steps, whichever runs it: a server's raw path (Node's request and
 * response, no Fastify objects) or Fastify (a hook or a route handler, with its request and reply). A step written
 * against this runs on both, and answers through the functions of answer.ts and the proxy, which write to the reply
 * when there is one (so the app's own hooks and error handler apply) and to the response otherwise.
 */
export class RequestContext {
  /**
   * The request's path without its query string, as the client sent it, once the server has resolved its dot
   * segments (the "original path" replay rules and sticky paths match on).
   */
  path: string
  /** The path an upstream or the static files see: `path` until a rewrite step changes it. */
  forwardedPath: string
  /** Headers a step added for whatever answers the request (the raw path; with a reply they are set on it). */
  responseHeaders: ResponseHeaders | null = null
  /** Where a runner stopped to hand the request over to Fastify (see pipeline runners); -1 when it did not. */
  resumeAt = -1
  /**
   * What the step that needed Fastify had found already (a file's lookup), handed to it when Fastify runs it, so
   * the work is not done twice; null otherwise.
   */
  handedOver: unknown = null

  /** The query string with its "?" (or ""), kept for the upstream's URL whatever the path becomes. */
  private readonly query: string

  constructor (
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly log: FastifyBaseLogger,
    readonly request: FastifyRequest | null = null,
    readonly reply: FastifyReply | null = null
  ) {
    const url = req.url as string
    const query = url.indexOf('?')
    this.path = query === -1 ? url : url.slice(0, query)
    this.query = query === -1 ? '' : url.slice(query)
    this.forwardedPath = this.path
  }

  /**
   * Replaces the request's path (its query string kept) for every step after this one, the request's URL included:
   * what Fastify routes on and what a direct proxy forwards.
   */
  setPath (path: string): void {
    this.req.url = path + this.query
    this.path = path
    this.forwardedPath = path
  }

  /** The forwarded path with the request's query string: what an upstream is asked for. */
  get upstreamPath (): string {
    return this.query === '' ? this.forwardedPath : this.forwardedPath + this.query
  }
}

/** A context for a request Fastify runs: answers go through `reply`. */
export function contextOf (request: FastifyRequest, reply: FastifyReply): RequestContext {
  return new RequestContext(request.raw, reply.raw, request.log, request, reply)
}

/**
 * Adds headers to whatever answers the request: on the reply when Fastify runs it, else kept on the context (a
 * frozen object shared by every request, such as this Machine's Set-Cookie, is kept as it is, without a copy).
 */
export function addResponseHeaders (ctx: RequestContext, headers: ResponseHeaders): void {
  if (ctx.reply !== null) {
    for (const name in headers) ctx.reply.header(name, headers[name])
    return
  }
  const current = ctx.responseHeaders
  if (current === null) {
    ctx.responseHeaders = headers
    return
  }
  const merged: Record<string, string | readonly string[]> = { ...current }
  for (const name in headers) {
    const before = merged[name]
    const value = headers[name]
    merged[name] = before === undefined || name !== 'set-cookie' ? value : ([] as string[]).concat(before, value)
  }
  ctx.responseHeaders = merged
}

/** Takes back a header a step added (a replay answer carries no Set-Cookie). */
export function removeResponseHeader (ctx: RequestContext, name: string): void {
  if (ctx.reply !== null) {
    ctx.reply.removeHeader(name)
    return
  }
  const current = ctx.responseHeaders
  if (current === null || current[name] === undefined) return
  const kept: Record<string, string | readonly string[]> = { ...current }
  delete kept[name]
  ctx.responseHeaders = kept
}

/** The headers every answer to this request carries: those on the reply, or those the context kept. */
export function pendingResponseHeaders (ctx: RequestContext): Readonly<Record<string, unknown>> | null {
  return ctx.reply !== null ? ctx.reply.getHeaders() : ctx.responseHeaders
}
