import { ANSWERED, answer, NEXT, type RequestContext, type Step, type StepOutcome, type StepResult } from '@navigator/proxy'
import { isRead, ownPath, readAccess } from '../metrics-access.js'
import { STATUS_JSON_HEADERS, statusPage } from '../status-page.js'
import type { AuthStep } from './auth.js'
import type { StepOptions } from './index.js'
import { answerNotFound } from './not-found.js'

/**
 * `server.status`: the status page and its JSON twin (`<path>.json`) are Navigator's own paths, guarded as the
 * metrics path is (`ownPath`): an allowed client that asks straight (a GET or HEAD, not through a proxy) gets them.
 * With `auth` on and the path not among its public ones, so does a client that passes auth, from anywhere (an
 * operator behind Fly's edge); without the right password it gets auth's 401. Anyone else gets the 404 of a path
 * that does not exist, so neither path reaches an app, a replay or another Machine. Other paths cost two string
 * comparisons.
 */
export function status ({ status }: StepOptions, auth: AuthStep | null): Step | null {
  if (status === null) return null
  const { path, allow } = status.settings
  const jsonPath = `${path}.json`
  const mayRead = readAccess(allow)
  const page = statusPage(jsonPath)
  const board = status
  const pageBehindAuth = auth !== null && !auth.isPublic(path)
  const jsonBehindAuth = auth !== null && !auth.isPublic(jsonPath)

  function sendPage (ctx: RequestContext): StepOutcome {
    answer(ctx, 200, page.headers, page.html(board.snapshot()))
    return ANSWERED
  }

  function sendJson (ctx: RequestContext): StepOutcome {
    answer(ctx, 200, STATUS_JSON_HEADERS, JSON.stringify(board.snapshot()))
    return ANSWERED
  }

  /** An allowed peer is served; with the path behind auth, anyone else who reads it is asked for auth's password. */
  function guarded (ctx: RequestContext, behindAuth: boolean, serve: (ctx: RequestContext) => StepOutcome): StepResult {
    if (!behindAuth || mayRead(ctx.req)) return ownPath(ctx, mayRead, serve)
    if (!isRead(ctx.req)) {
      answerNotFound(ctx)
      return ANSWERED
    }
    const verdict = (auth as AuthStep).run(ctx)
    if (verdict === NEXT) return serve(ctx)
    if (typeof verdict !== 'object') return verdict
    return verdict.then((outcome) => outcome === NEXT ? serve(ctx) : outcome)
  }

  return {
    name: 'status',
    run (ctx) {
      if (ctx.path === path) return guarded(ctx, pageBehindAuth, sendPage)
      if (ctx.path === jsonPath) return guarded(ctx, jsonBehindAuth, sendJson)
      return NEXT
    }
  }
}
