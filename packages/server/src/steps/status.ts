import { ANSWERED, answer, NEXT, type RequestContext, type Step, type StepOutcome } from '@navigator/proxy'
import { ownPath, readAccess } from '../metrics-access.js'
import { STATUS_JSON_HEADERS, statusPage } from '../status-page.js'
import type { StepOptions } from './index.js'

/**
 * `server.status`: the status page and its JSON twin (`<path>.json`) are Navigator's own paths, guarded as the
 * metrics path is (`ownPath`): an allowed client that asks straight (a GET or HEAD, not through a proxy) gets them;
 * anyone else gets the 404 of a path that does not exist, so neither path reaches an app, a replay or another
 * Machine. Other paths cost two string comparisons.
 */
export function status ({ status }: StepOptions): Step | null {
  if (status === null) return null
  const { path, allow } = status.settings
  const jsonPath = `${path}.json`
  const mayRead = readAccess(allow)
  const page = statusPage(jsonPath)
  const board = status

  function sendPage (ctx: RequestContext): StepOutcome {
    answer(ctx, 200, page.headers, page.html(board.snapshot()))
    return ANSWERED
  }

  function sendJson (ctx: RequestContext): StepOutcome {
    answer(ctx, 200, STATUS_JSON_HEADERS, JSON.stringify(board.snapshot()))
    return ANSWERED
  }

  return {
    name: 'status',
    run (ctx) {
      if (ctx.path === path) return ownPath(ctx, mayRead, sendPage)
      if (ctx.path === jsonPath) return ownPath(ctx, mayRead, sendJson)
      return NEXT
    }
  }
}
