import { ANSWERED, answer, isUpgrade, NEXT, pendingResponseHeaders, takeUpgrade, type RequestContext, type Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'

const NOT_AN_UPGRADE = Object.freeze(['sec-websocket-version', '13', 'content-type', 'text/plain; charset=utf-8', 'x-content-type-options', 'nosniff'])

/**
 * `cable.path`: a WebSocket upgrade is answered by the TurboCable hub (../cable-hub.ts) rather than passed on. After
 * auth and the sticky sessions, as any WebSocket: a client with a password to give gives it here, and one whose
 * cookie names another Machine is replayed there. A plain HTTP request for the path gets 400, as from the Go
 * Navigator (its WebSocket library's answer to a request that asks for no upgrade).
 */
export function cable ({ config, cable: hub }: StepOptions): Step | null {
  if (!config.cable.enabled) return null
  const path = config.cable.path
  return {
    name: 'cable',
    run (ctx) {
      if (ctx.path !== path) return NEXT
      if (!isUpgrade(ctx.req)) {
        answer(ctx, 400, NOT_AN_UPGRADE, 'Bad Request\n')
        return ANSWERED
      }
      const cookies = pendingCookies(ctx)
      const upgrade = takeUpgrade(ctx)
      if (upgrade !== null) hub.accept(ctx.req, upgrade.socket, upgrade.head, cookies)
      return ANSWERED
    }
  }
}

/** The cookies a step set for this request's answer (the sticky cookie), for the 101. */
function pendingCookies (ctx: RequestContext): readonly string[] {
  const cookies = pendingResponseHeaders(ctx)?.['set-cookie']
  if (cookies === undefined) return []
  return Array.isArray(cookies) ? cookies.map(String) : [String(cookies)]
}
