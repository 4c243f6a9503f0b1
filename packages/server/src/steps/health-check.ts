import { ANSWERED, answer, NEXT, type Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'

const HEADERS = Object.freeze(['content-type', 'text/plain; charset=utf-8'])

/** `server.health_check`: Navigator itself answers 200 on that path (its query string aside), before anything else. */
export function healthCheck ({ config }: StepOptions): Step | null {
  const path = config.server.healthCheck
  if (path === null) return null
  return {
    name: 'health-check',
    run (ctx) {
      if (ctx.path !== path) return NEXT
      answer(ctx, 200, HEADERS, 'OK\n')
      return ANSWERED
    }
  }
}
