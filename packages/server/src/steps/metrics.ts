import { ANSWERED, answer, NEXT, type RequestContext, type Step, type StepOutcome } from '@navigator/proxy'
import { NOBODY, ownPath, readAccess } from '../metrics-access.js'
import type { StepOptions } from './index.js'

/**
 * `server.metrics`: the metrics path is Navigator's own, before anything could route it elsewhere. On the main port
 * (no `metrics.listen`) an allowed client that asks for it straight (not through a proxy) gets the metrics; anyone
 * else, and everyone when the metrics have a listener of their own, gets the 404 of a path that does not exist, so
 * the path never reaches an app, a replay or another Machine (the guard is `ownPath`, shared with the status page).
 * Every request that arrives with `fly-replay-failed` is counted here, whatever it asks for.
 */
export function metrics ({ metrics }: StepOptions): Step | null {
  if (metrics === null) return null
  const { path, listen } = metrics.settings
  const mayRead = listen === null ? readAccess(metrics.settings.allow) : NOBODY

  const collector = metrics
  async function scrape (ctx: RequestContext): Promise<StepOutcome> {
    answer(ctx, 200, collector.answerHeaders, await collector.scrape())
    return ANSWERED
  }

  return {
    name: 'metrics',
    run (ctx) {
      const failed = ctx.req.headers['fly-replay-failed']
      if (failed !== undefined) metrics.replayFailedArrived(failed)
      if (ctx.path !== path) return NEXT
      return ownPath(ctx, mayRead, scrape)
    }
  }
}
