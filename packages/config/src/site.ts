// The keys that say where the site is and whom it believes: `server.hostname`, `server.root_path`,
// `server.trust_proxy`, and `bot_detection` (of the server and of each tenant).

import { DEFAULT_BOT_DETECTION_ACTION } from './defaults.js'
import type { ProblemCollector } from './problems.js'
import type { BotAction, BotDetectionConfig } from './types.js'

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** A DNS name (RFC 1123 labels) or an IPv4 address; no port, no scheme, no path. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/

/** `server.hostname` in lower case without a final dot, or null. */
export function normaliseHostname (value: unknown, problems: ProblemCollector): string | null {
  if (typeof value !== 'string') return null
  const name = value.toLowerCase()
  if (!HOST_NAME.test(name)) {
    problems.add(['server', 'hostname'], `${JSON.stringify(value)} is not a host name: write the name alone, such as example.com (no scheme, port or path)`)
    return null
  }
  return name.endsWith('.') ? name.slice(0, -1) : name
}

/** `server.root_path` without its trailing slashes ("/showcase"); null when absent or "/". */
export function normaliseRootPath (value: unknown, problems: ProblemCollector): string | null {
  if (typeof value !== 'string') return null
  if (!/^\/[^\s?#*]*$/.test(value) || value.split('/').some((segment) => segment === '.' || segment === '..')) {
    problems.add(['server', 'root_path'], `${JSON.stringify(value)} is not a URL prefix: write a path starting with "/", such as /showcase (no spaces, "?", "#", "*" or dot segments)`)
    return null
  }
  const trimmed = value.replace(/\/+$/, '')
  return trimmed === '' ? null : trimmed
}

const ACTIONS: readonly string[] = ['reject', 'ignore', 'static-only']

/** A `bot_detection` mapping (the schema has checked its keys and words a wrong action); null when absent. */
export function normaliseBotDetection (value: unknown): BotDetectionConfig | null {
  if (!isRecord(value)) return null
  const action = typeof value.action === 'string' && ACTIONS.includes(value.action) ? value.action as BotAction : DEFAULT_BOT_DETECTION_ACTION
  return { enabled: value.enabled === true, action }
}

/** Bot detection off, for a configuration that does not have the key. */
export const BOT_DETECTION_OFF: Readonly<BotDetectionConfig> = Object.freeze({ enabled: false, action: DEFAULT_BOT_DETECTION_ACTION })
