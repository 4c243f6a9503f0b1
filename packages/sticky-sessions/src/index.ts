import { stickySessions } from './plugin.js'

export { stickySessions, createStickySessions } from './plugin.js'
export type { StickySessions } from './plugin.js'
export { StickyStep, REPLAY_RESPONSE_BODY, REJECTION_LOG_INTERVAL_MS } from './step.js'
export type { StickySession, StickyAction } from './step.js'
export {
  resolveOptions,
  optionsFromConfig,
  DEFAULT_ENABLED,
  DEFAULT_COOKIE_NAME,
  DEFAULT_COOKIE_MAX_AGE,
  DEFAULT_COOKIE_SECURE,
  DEFAULT_COOKIE_HTTP_ONLY,
  DEFAULT_COOKIE_SAME_SITE,
  DEFAULT_COOKIE_PATH,
  DEFAULT_PATHS,
  DEFAULT_FALLBACK_MODE,
  DEFAULT_REPLAY_TIMEOUT,
  DEFAULT_REPLAY_CACHE,
  DEFAULT_REPLAY_STATUS,
  DEFAULT_PORT,
  STICKY_REPLAY_STATE
} from './options.js'
export type { StickySessionsOptions, ResolvedOptions, DiscoveryOption } from './options.js'
export { createCookieCodec, createCookieReader, COOKIE_REJECTIONS } from './cookie.js'
export type { CookieCodec, CookieRejection } from './cookie.js'
export { createDecider, PROXIED_HEADER } from './decide.js'
export type { Decision, DecisionKind, DecisionContext, Decider } from './decide.js'
export { createDnsDiscovery, createStaticDiscovery, noDiscovery, DEFAULT_DISCOVERY_REFRESH_MS } from './discovery.js'
export type { MachineDiscovery, DnsDiscoveryOptions, ResolveTxt } from './discovery.js'
export { compileStickyPaths } from './paths.js'
export { defaultMaintenance, DEFAULT_MAINTENANCE_PAGE } from './maintenance.js'
export { InvalidStickyOptionError } from './errors.js'

export default stickySessions
