import { NEXT, type Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'

/**
 * `routes.rewrites`: the forwarded path, by the first rule whose pattern matches the request's path. Static files,
 * standalone servers and tenants route on it; replay rules and sticky paths keep to the path the client sent.
 */
export function rewrites ({ config }: StepOptions): Step | null {
  const rules = config.routes.rewrites
  if (rules.length === 0) return null
  return {
    name: 'rewrites',
    run (ctx) {
      for (const rule of rules) {
        if (rule.pattern.test(ctx.path)) {
          ctx.forwardedPath = ctx.path.replace(rule.pattern, rule.rewrite)
          break
        }
      }
      return NEXT
    }
  }
}
