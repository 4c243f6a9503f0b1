import { createRequire } from 'node:module'
import type { BotDetectionConfig } from '@navigator/config'
import { ANSWERED, answer, isUpgrade, NEXT, type RequestContext, type Step, type StepResult } from '@navigator/proxy'
import type { StepOptions } from './index.js'
import { createStaticLookup, type StaticLookup } from './static-files.js'
import { tenantRouter } from './tenants.js'

const HEADERS = Object.freeze(['content-type', 'text/plain; charset=utf-8'])
const FORBIDDEN = 'Forbidden\n'

type IsBot = (userAgent: string) => boolean

/**
 * The `isbot` package's test of a User-Agent, loaded when a configuration first turns bot detection on: a Navigator
 * without it never loads the package's patterns. (Written as createRequire(import.meta.url)('name'): the release's
 * bundler follows that form.)
 */
let isbotFunction: IsBot | null = null

function isbot (): IsBot {
  isbotFunction ??= (createRequire(import.meta.url)('isbot') as { isbot: IsBot }).isbot
  return isbotFunction
}

/**
 * `bot_detection` of the server, or of the tenant a request is routed to (which replaces the server's): a request
 * whose User-Agent is a bot's is answered 403 (`reject`), goes on (`ignore`), or goes on only when it is for a static
 * file that the static files step will serve (`static-only`; a GET or HEAD, never an upgrade). It stands after the
 * health check, the metrics, the status page and the redirects, which answer bots as anyone, and before the static
 * files, so that `reject` refuses them too; WebSocket upgrades go through it as every request does. Left out of the
 * list when no bot detection is enabled.
 */
export function botDetection ({ config }: StepOptions): Step | null {
  const server = config.server.botDetection
  const tenants = config.applications.tenants
  const overridden = tenants.some((tenant) => tenant.botDetection != null)
  if (!server.enabled && !tenants.some((tenant) => tenant.botDetection?.enabled === true)) return null
  const isBot = isbot()
  const route = overridden ? tenantRouter(tenants) : null
  const settingsFor = (path: string): BotDetectionConfig => route?.(path)?.botDetection ?? server
  // Built only when some setting needs it: the static files are looked up again for a bot only.
  const anyStaticOnly = server.action === 'static-only' || tenants.some((tenant) => tenant.botDetection?.action === 'static-only')
  const findStaticFile: StaticLookup | null = anyStaticOnly ? createStaticLookup(config) : null

  return {
    name: 'bot-detection',
    run (ctx) {
      const settings = settingsFor(ctx.forwardedPath)
      if (!settings.enabled || settings.action === 'ignore') return NEXT
      const agent = ctx.req.headers['user-agent']
      if (agent === undefined || !isBot(agent)) return NEXT
      if (settings.action === 'static-only' && findStaticFile !== null) return staticOnly(ctx, findStaticFile)
      return refuse(ctx)
    }
  }
}

/** A bot may have a static file, and nothing else. */
function staticOnly (ctx: RequestContext, findStaticFile: StaticLookup): StepResult {
  const method = ctx.req.method
  if ((method !== 'GET' && method !== 'HEAD') || isUpgrade(ctx.req)) return refuse(ctx)
  const found = findStaticFile(ctx.forwardedPath)
  if (found === null) return refuse(ctx)
  return found.then((file) => file === null ? refuse(ctx) : NEXT)
}

function refuse (ctx: RequestContext): typeof ANSWERED {
  ctx.log.debug({ userAgent: ctx.req.headers['user-agent'], url: ctx.req.url }, 'bot refused')
  answer(ctx, 403, HEADERS, FORBIDDEN)
  return ANSWERED
}
