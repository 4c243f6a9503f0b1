import { flyReplayRules } from './rules.js'

export { flyReplayRules, createReplayRules, RULES_REPLAY_STATE, REPLAY_RESPONSE_BODY } from './rules.js'
export type { FlyReplayRulesOptions, ReplayRules } from './rules.js'
export {
  buildReplayHeader,
  buildReplayJson,
  parseReplayHeader,
  REPLAY_JSON_CONTENT_TYPE
} from './replay-header.js'
export type { ReplayFields, ReplayJson } from './replay-header.js'
export { parseReplaySrc, parseReplayFailed, navigatorReplayState, NAVIGATOR_STATE_PREFIX } from './replay-src.js'
export type { ReplaySource, ReplayFailure } from './replay-src.js'
export { isReplayable, MAX_REPLAY_BODY_BYTES } from './replayable.js'
export { NAVIGATOR_VIA_HEADER, UNIDENTIFIED_MACHINE, markRoutedHere, isRoutedHere } from './loop-marker.js'
export { isValidMachineId, MACHINE_ID_PATTERN } from './machine-id.js'
export { REGION_PATTERN, APP_PATTERN, STATE_PATTERN, FALLBACKS } from './grammar.js'
export type { ReplayFallback } from './grammar.js'
export { InvalidReplayFieldError, InvalidOptionError } from './errors.js'
// @navigator/sticky-sessions sits on this package; these helpers of @navigator/config are re-exported (not
// reimplemented) so it can keep to the one path matcher and the one duration parser.
export { compilePathPatterns, parseDuration, formatDuration, DEFAULT_MAX_REPLAY_BODY } from '@navigator/config'
export type { PathMatcher, ReplayRule, ReplayTarget, SameSite, FallbackMode, DirectProxyMode, StickySessionsConfig } from '@navigator/config'

export default flyReplayRules
