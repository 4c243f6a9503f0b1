export {
  createUpstreamProxy,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_BODY_TIMEOUT_MS
} from './proxy.js'
export type { UpstreamProxy, UpstreamProxyOptions, UpstreamTarget, ForwardOptions } from './proxy.js'
export {
  UpstreamUnreachableError,
  UpstreamTimeoutError,
  InvalidReplayFieldError,
  InvalidOptionError
} from './errors.js'
