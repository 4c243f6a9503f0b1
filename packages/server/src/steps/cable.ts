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
      // With auth on, a browser sends its cached password with any page's WebSocket: another site's page must not
      // subscribe in its name (the upgrade's Origin names another host than the request's).
      if (config.auth !== null && crossOrigin(ctx)) {
        answer(ctx, 403, FORBIDDEN, 'Forbidden: the page that opened this WebSocket is on another site\n')
        return ANSWERED
      }
      const cookies = pendingCookies(ctx)
      const upgrade = takeUpgrade(ctx)
      if (upgrade !== null) hub.accept(ctx.req, upgrade.socket, upgrade.head, cookies)
      return ANSWERED
    }
  }
}

const FORBIDDEN = Object.freeze(['content-type', 'text/plain; charset=utf-8', 'x-content-type-options', 'nosniff'])

/** Whether the upgrade's Origin (a browser sends it) names another host than its Host; no Origin is not a browser's. */
function crossOrigin (ctx: RequestContext): boolean {
  const origin = ctx.req.headers.origin
  if (origin === undefined) return false
  let host: string
  try {
    host = new URL(origin).host
  } catch {
    return true
  }
  return host.toLowerCase() !== (ctx.req.headers.host ?? '').toLowerCase()
}

/** The cookies a step set for this request's answer (the sticky cookie), for the 101. */
function pendingCookies (ctx: RequestContext): readonly string[] {
  const cookies = pendingResponseHeaders(ctx)?.['set-cookie']
  if (cookies === undefined) return []
  return Array.isArray(cookies) ? cookies.map(String) : [String(cookies)]
}
