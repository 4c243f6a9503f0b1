import { ANSWERED, answer, NEXT, type HeaderList, type Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'
import { tenants } from './tenants.js'

/**
 * `server.health_check`, before anything else, on its path (the query string aside). With a response (a path alone
 * is 200 `OK`) Navigator answers it itself, whatever the apps are doing. Without one the check is the app's: it is
 * proxied to the tenant whose path prefix holds the check's path, as the tenants step routes any request, but before
 * the rewrites, auth and maintenance mode, which are for visitors rather than for the platform's probe. With no such
 * tenant it goes on through the steps like any request.
 */
export function healthCheck (options: StepOptions): Step | null {
  const { healthCheck: path, healthCheckResponse: response } = options.config.server
  if (path === null) return null
  if (response === null) return proxiedHealthCheck(path, options)
  const headers = answerHeaders(response.headers)
  return {
    name: 'health-check',
    run (ctx) {
      if (ctx.path !== path) return NEXT
      answer(ctx, response.status, headers, response.body)
      return ANSWERED
    }
  }
}

/**
 * Configured headers as an answer's list. Without a Content-Type the plain-text one is added, the one Fastify would
 * give a string body, so that both runners of the steps send the same headers.
 */
export function answerHeaders (headers: Readonly<Record<string, string>>): HeaderList {
  const list = Object.entries(headers).flat()
  if (headers['content-type'] === undefined) list.push('content-type', 'text/plain; charset=utf-8')
  return Object.freeze(list)
}

function proxiedHealthCheck (path: string, options: StepOptions): Step {
  const app = tenants(options)
  return {
    name: 'health-check',
    run (ctx) {
      if (ctx.path !== path || app === null) return NEXT
      return app.run(ctx)
    }
  }
}
