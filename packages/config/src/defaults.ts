// The default of every key that has one; the schema (schema.ts) carries them into the reference and the JSON
// Schema, and the normalisation (load.ts) applies them.

export const DEFAULT_PUBLIC_DIR = 'public'
export const DEFAULT_ALLOW_DOTFILES = false
/** What `bot_detection` does with a bot when it names no action (the Go Navigator's). */
export const DEFAULT_BOT_DETECTION_ACTION = 'reject'
export const DEFAULT_NORMALIZE_TRAILING_SLASHES = false
/** The Go Navigator's status for a redirect (302 Found). */
export const DEFAULT_REDIRECT_STATUS = 302
export const DEFAULT_SHUTDOWN_TIMEOUT = '30s'
export const DEFAULT_IDLE_ACTION = 'suspend'
export const DEFAULT_IDLE_TIMEOUT = '20m'
export const DEFAULT_IDLE_API_SOCKET = '/.fly/api'
export const DEFAULT_METRICS_PATH = '/metrics'
/** Who may read the metrics: this computer only, unless `server.metrics.allow` says otherwise. */
export const DEFAULT_METRICS_ALLOW: readonly string[] = ['127.0.0.0/8', '::1/128']
export const DEFAULT_STATUS_PATH = '/navigator/status'
/** Who may see the status page: this computer only, as for the metrics, unless `server.status.allow` says otherwise. */
export const DEFAULT_STATUS_ALLOW: readonly string[] = DEFAULT_METRICS_ALLOW
export const DEFAULT_STICKY_DEBUG_HEADER = false
export const DEFAULT_COOKIE_NAME = '_navigator_machine'
export const DEFAULT_COOKIE_MAX_AGE = '24h'
export const DEFAULT_COOKIE_SAMESITE = 'Lax'
export const DEFAULT_COOKIE_SECURE = false
export const DEFAULT_COOKIE_HTTP_ONLY = true
export const DEFAULT_REPLAY_CACHE = false
export const DEFAULT_COOKIE_PATH = '/'
export const DEFAULT_COOKIE_PARTITIONED = false
export const DEFAULT_FALLBACK_MODE = 'maintenance'
export const DEFAULT_REPLAY_TIMEOUT = '10s'
export const DEFAULT_REPLAY_STATUS = 307
export const DEFAULT_DIRECT_PROXY = 'vm'
/** Fly's replay limit: its documentation says requests larger than 1MB cannot be replayed; 1 MB is 1,000,000 bytes. */
export const DEFAULT_MAX_REPLAY_BODY = 1_000_000
export const DEFAULT_PEER_WRITE_TIMEOUT = '5s'
export const DEFAULT_TENANT_COMMAND = 'bin/rails'
export const DEFAULT_TENANT_ARGS: readonly string[] = ['server', '-b', '127.0.0.1', '-p', '${PORT}']
export const DEFAULT_START_PORT = 4000
export const DEFAULT_STARTUP_TIMEOUT = '60s'
export const DEFAULT_IDLE_TENANT_TIMEOUT = '10m'
export const DEFAULT_TENANT_HEALTH_CHECK = '/up'
export const DEFAULT_TENANT_START = 'lazy'
/** applications.max_size: no limit on how many tenants run at once. */
export const DEFAULT_MAX_SIZE = 0
export const DEFAULT_PORT_ENV_VAR = 'PORT'
export const DEFAULT_TENANT_START_DELAY = '0s'
export const DEFAULT_TRACK_WEBSOCKETS = true
export const DEFAULT_LOG_FORMAT = 'json'
export const DEFAULT_MANAGED_AUTO_RESTART = false
/** A managed process starts this long after Navigator starts (a Go duration, or whole seconds as the Go docs write it). */
export const DEFAULT_MANAGED_START_DELAY = '0s'
/** The realm of `auth` when it names none (the Go Navigator's). */
export const DEFAULT_AUTH_REALM = 'Restricted'
/** `cable`: the TurboCable hub is off unless enabled (the Go Navigator's is on by default). */
export const DEFAULT_CABLE_ENABLED = false
export const DEFAULT_CABLE_PATH = '/cable'
export const DEFAULT_CABLE_BROADCAST_PATH = '/_broadcast'
