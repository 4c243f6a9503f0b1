import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { contextOf, type RequestContext } from './request-context.js'

// The contract between a pipeline and its steps. A step is a function of the request that answers it, lets it go
// on (having perhaps changed the forwarded path or added response headers), or, on a raw path only, says that what
// it must do needs Fastify (a file sent by @fastify/static): the runner then hands the request to Fastify, which
// runs the same list from that step. A step that must wait returns a promise of its outcome.

/** The request goes on to the next step. */
export const NEXT = 0
/** The step answered the request, or started an answer that finishes by itself (a proxied response). */
export const ANSWERED = 1
/** Only without a Fastify reply: this step needs Fastify; nothing was written. */
export const NEEDS_FASTIFY = 2

export type StepOutcome = typeof NEXT | typeof ANSWERED | typeof NEEDS_FASTIFY
export type StepResult = StepOutcome | Promise<StepOutcome>

export interface Step {
  /** What the step does, named as its file is: "health-check", "sticky-sessions". */
  readonly name: string
  run (ctx: RequestContext): StepResult
}

/**
 * A step as a Fastify onRequest hook, for a plugin that a user registers in an app of their own: the request goes
 * on to the app's routes when the step lets it, and stops where the step answered. Callback style: the common
 * outcome allocates no promise.
 */
export function stepHook (step: Step): (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void {
  return function runStep (request, reply, done) {
    const result = step.run(contextOf(request, reply))
    if (result === NEXT) done()
    else if (typeof result === 'object') {
      result.then((outcome) => { if (outcome === NEXT) done() }, (err: Error) => { if (!reply.raw.headersSent) done(err) })
    }
  }
}
