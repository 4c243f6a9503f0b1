import { ANSWERED, NEXT, type Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'
import { answerRedirect, queryOf } from './redirects.js'

/**
 * `routes.redirects` and `routes.rewrites`, as one list: the redirects first, then the rewrites, the first rule whose
 * pattern matches the request's path deciding, as in the Go Navigator (which turns both into one list of rewrite
 * rules, a redirect being a rule with the redirect flag). So a redirect cannot live in a step of its own: a rewrite
 * listed before it must still win. A redirect is answered here (before static files and authentication: it reveals
 * nothing but where to go, and the next request goes through both); a rewrite sets the forwarded path. Static files,
 * standalone servers and tenants route on that path; replay rules and sticky paths keep to the path the client sent.
 */
export function rewrites ({ config }: StepOptions): Step | null {
  const rules = [...config.routes.redirects, ...config.routes.rewrites]
  if (rules.length === 0) return null
  return {
    name: 'rewrites',
    run (ctx) {
      for (const rule of rules) {
        if (!rule.pattern.test(ctx.path)) continue
        const target = ctx.path.replace(rule.pattern, rule.rewrite)
        if (rule.redirectStatus === null) {
          ctx.forwardedPath = target
          return NEXT
        }
        // A target with a query string of its own says what the query is; otherwise the client's is kept.
        answerRedirect(ctx, rule.redirectStatus, target.includes('?') ? target : target + queryOf(ctx))
        return ANSWERED
      }
      return NEXT
    }
  }
}
