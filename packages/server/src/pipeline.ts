import type { IncomingMessage, ServerResponse } from 'node:http'
import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { addResponseHeaders, ANSWERED, contextOf, NEEDS_FASTIFY, NEXT, RequestContext, sendErrorAnswer } from '@navigator/proxy'
import type { Step, StepResult } from '@navigator/proxy'
import { markAnswered } from './metrics.js'
import type { Steps } from './steps/index.js'

// The two runners of the one list of steps (steps/index.ts). The raw path runs every request first, on Node's
// request and response: Fastify's routing, request and reply objects and hooks would cost a sixth of the CPU of a
// proxied request (bench/README.md). A step that needs Fastify (a file sent by @fastify/static) makes it hand the
// request to the generation's Fastify instance, whose route runs the same list from that step on, with what the
// steps before it decided (the forwarded path, response headers). Requests made with fastify.inject() go through
// Fastify's runner from the first step.

/** The raw path's context, on a request it hands to Fastify. */
const kHandedOver = Symbol('navigator.handedOver')
type HandedOverRequest = IncomingMessage & { [kHandedOver]?: RequestContext }

export interface Pipeline {
  readonly steps: readonly Step[]
  /** The raw path: runs the steps on a request no Fastify instance has seen; hands it to `app` when a step needs it. */
  run (req: IncomingMessage, res: ServerResponse, app: FastifyInstance): void
  /** Fastify's runner: the route handler (and not-found handler) of the pipeline plugin. */
  handle (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> | undefined
  close (): Promise<void>
}

/**
 * Runs `steps` from index `from` until one answers, needs Fastify, or must wait (then the rest runs after it). With
 * `marks`, the step that answered (or is answering, while it waits) is marked on the response, for the metrics'
 * count of requests by step.
 */
function runFrom (steps: readonly Step[], ctx: RequestContext, from: number, marks: boolean): StepResult {
  for (let i = from; i < steps.length; i++) {
    const result = steps[i].run(ctx)
    if (result === NEXT) continue
    if (result === NEEDS_FASTIFY) ctx.resumeAt = i
    if (typeof result !== 'object') {
      if (marks && result === ANSWERED) markAnswered(ctx.res, steps[i].name)
      return result
    }
    // Marked before it settles: a response can close before the promise of the step that answered it resolves.
    if (marks) markAnswered(ctx.res, steps[i].name)
    return result.then((outcome) => {
      if (outcome === NEXT) return runFrom(steps, ctx, i + 1, marks)
      if (outcome === NEEDS_FASTIFY) ctx.resumeAt = i
      return outcome
    })
  }
  // The last step (not-found) always answers.
  return ANSWERED
}

/** A step threw on the raw path: answered as Fastify answers a route that throws (500), and logged. */
function failed (ctx: RequestContext, err: Error): void {
  ctx.log.error({ err }, 'the request pipeline failed')
  if (!ctx.res.headersSent) sendErrorAnswer(ctx.res, err, ctx.responseHeaders)
  else ctx.res.destroy()
}

function fastifyOnly (req: IncomingMessage, res: ServerResponse, app: FastifyInstance): void {
  app.routing(req, res)
}

function handOver (ctx: RequestContext, app: FastifyInstance): void {
  (ctx.req as HandedOverRequest)[kHandedOver] = ctx
  app.routing(ctx.req, ctx.res)
}

export interface PipelineOptions {
  /**
   * false: every request goes to Fastify's runner from the first step, the raw path is never taken. The answers
   * are the same, only slower: for ruling the raw path out when something looks wrong, and for the test that
   * compares the two paths. Default true.
   */
  rawPath?: boolean
  /** Mark the step that answered each request on its response, for navigator_requests_total. Default false. */
  metrics?: boolean
}

export function createPipeline ({ list, close }: Steps, options: PipelineOptions = {}): Pipeline {
  const marks = options.metrics === true
  return {
    steps: list,
    close,
    run: options.rawPath === false
      ? fastifyOnly
      : function run (req, res, app) {
        const ctx = new RequestContext(req, res, app.log)
        let result: StepResult
        try {
          result = runFrom(list, ctx, 0, marks)
        } catch (err) {
          failed(ctx, err as Error)
          return
        }
        if (result === NEEDS_FASTIFY) handOver(ctx, app)
        else if (typeof result === 'object') {
          result.then((outcome) => { if (outcome === NEEDS_FASTIFY) handOver(ctx, app) }, (err: Error) => { failed(ctx, err) })
        }
      },
    handle (request, reply) {
      const ctx = contextOf(request, reply)
      let from = 0
      const handed = (request.raw as HandedOverRequest)[kHandedOver]
      if (handed !== undefined) {
        ctx.forwardedPath = handed.forwardedPath
        ctx.handedOver = handed.handedOver
        if (handed.responseHeaders !== null) addResponseHeaders(ctx, handed.responseHeaders)
        from = handed.resumeAt
      }
      const result = runFrom(list, ctx, from, marks)
      // Synchronous on the hot path: the step answered (or the proxy will), and no promise is made.
      return typeof result === 'object' ? result.then(() => reply) : undefined
    }
  }
}

export interface PipelinePluginOptions {
  pipeline: Pipeline
  /** The folder @fastify/static sends files from (server.static.public_dir). */
  publicDir: string
}

function passBodyThrough (request: FastifyRequest, payload: unknown, done: (err: Error | null, body?: unknown) => void): void {
  done(null)
}

/**
 * Fastify's side of the pipeline (not encapsulated: it is the whole application): @fastify/static for the files,
 * and one catch-all route that runs the steps. Bodies are never parsed: the proxy streams them upstream, so
 * Fastify's body limit and 415 answers never apply.
 */
async function registerPipeline (fastify: FastifyInstance, { pipeline, publicDir }: PipelinePluginOptions): Promise<void> {
  await fastify.register(fastifyStatic, {
    root: publicDir,
    serve: false,
    preCompressed: true,
    index: false,
    list: false,
    suppressWarning: true
  })
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', passBodyThrough)
  fastify.all('*', pipeline.handle)
  fastify.setNotFoundHandler(pipeline.handle)
  fastify.addHook('onClose', pipeline.close)
}

export const pipelinePlugin = fp(registerPipeline, { fastify: '5.x', name: '@navigator/server-pipeline' })
