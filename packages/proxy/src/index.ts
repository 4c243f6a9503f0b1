export { RequestContext, contextOf, addResponseHeaders, removeResponseHeader, pendingResponseHeaders } from './request-context.js'
export type { ResponseHeaders } from './request-context.js'
export { NEXT, ANSWERED, NEEDS_FASTIFY, stepHook } from './step.js'
export type { Step, StepOutcome, StepResult } from './step.js'
export {
  answer,
  answerError,
  sendErrorAnswer,
  createMaintenanceResponder,
  DEFAULT_RETRY_AFTER_SECONDS
} from './answer.js'
export type { MaintenanceResponder, HeaderList } from './answer.js'
export {
  createUpstreamProxy,
  withForwardOptions,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_BODY_TIMEOUT_MS
} from './proxy.js'
export type { UpstreamProxy, UpstreamProxyOptions, UpstreamTarget, ForwardOptions, UpstreamFailure } from './proxy.js'
export { hasBody } from './body-relay.js'
export { acceptedEncoding, COMPRESSION_THRESHOLD_BYTES, BROTLI_QUALITY, GZIP_LEVEL } from './compress.js'
export type { ContentEncoding } from './compress.js'
export {
  WebSocketRelay,
  acceptUpgrade,
  ANSWERED_UPGRADE_LINGER_MS,
  closeRefusedUpgrade,
  isUpgrade,
  takeUpgrade,
  UPSTREAM_HANDSHAKE_TIMEOUT_MS,
  CLOSE_GRACE_MS,
  CLOSE_GOING_AWAY
} from './websocket-relay.js'
export type { WebSocketRelayOptions, RelayTarget } from './websocket-relay.js'
export { UpstreamUnreachableError, UpstreamTimeoutError, InvalidOptionError } from './errors.js'
