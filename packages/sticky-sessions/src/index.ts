import { stickySessions } from './plugin.js'

export { stickySessions, createStickySessions } from './plugin.js'
export type { StickySessions } from './plugin.js'
export { StickyStep, REPLAY_RESPONSE_BODY, REJECTION_LOG_INTERVAL_MS, ASLEEP_HINT, SECURE_OVER_HTTP_HINT, STICKY_DEBUG_HEADER, NO_CANDIDATE_REFRESH } from './step.js'
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
  DEFAULT_COOKIE_PARTITIONED,
  DEFAULT_PATHS,
  DEFAULT_FALLBACK_MODE,
  DEFAULT_REPLAY_TIMEOUT,
  DEFAULT_REPLAY_CACHE,
  DEFAULT_REPLAY_STATUS,
  DEFAULT_MAX_REPLAY_BODY,
  DEFAULT_DIRECT_PROXY_MODE,
  DEFAULT_PORT,
  DEFAULT_STICKY_DEBUG_HEADER,
  STICKY_REPLAY_STATE
} from './options.js'
export type { StickySessionsOptions, ResolvedOptions, CookieAttributes, DiscoveryOption, StickyDecision, StickyObserver } from './options.js'
export { createCookieCodec, createCookieReader, stickySetCookie, COOKIE_REJECTIONS } from './cookie.js'
export type { CookieCodec, CookieRejection } from './cookie.js'
export { createDecider, LEGACY_PROXIED_HEADER, PREFERRED_UNAVAILABLE_HEADER } from './decide.js'
export { createDirectRouter, flycastOrigin } from './direct-proxy.js'
export type { DirectRoute, DirectRouter } from './direct-proxy.js'
export type { Decision, DecisionKind, DecisionContext, Decider } from './decide.js'
export { createDnsDiscovery, createStaticDiscovery, noDiscovery, DEFAULT_DISCOVERY_REFRESH_MS, EXTRA_REFRESH_INTERVAL_MS } from './discovery.js'
export type { MachineDiscovery, DnsDiscoveryOptions, ResolveTxt } from './discovery.js'
export { compileStickyPaths } from './paths.js'
export { defaultMaintenance, DEFAULT_MAINTENANCE_PAGE } from './maintenance.js'
export { InvalidStickyOptionError } from './errors.js'

export default stickySessions
