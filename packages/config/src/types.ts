// The normalised configuration every other package consumes. Keys are camelCase,
// durations are milliseconds, paths are absolute, regexes are compiled. The YAML
// (snake_case) shape lives in schema.ts; load.ts turns one into the other.

export type SameSite = 'Strict' | 'Lax' | 'None'
export type FallbackMode = 'maintenance' | 'route_to_available'
/** How a body too large to replay reaches another Machine: its private address, or Fly's proxy over Flycast. */
export type DirectProxyMode = 'vm' | 'flycast'
export type IdleAction = 'suspend' | 'stop'
export type StartMode = 'lazy' | 'eager'

export interface ListenAddress {
  host: string
  port: number
}

export interface IdleConfig {
  action: IdleAction
  timeoutMs: number
  apiSocket: string
}

/** A block of addresses: an IPv4 or IPv6 network and its prefix length (a single address has the full length). */
export interface AddressBlock {
  address: string
  prefix: number
  family: 'ipv4' | 'ipv6'
}

export interface MetricsConfig {
  /** The path the metrics are answered on (query string ignored). */
  path: string
  /** A listener of their own, or null: then they are answered on the main port. */
  listen: ListenAddress | null
  /** The clients that may read them; anyone else gets 404. */
  allow: AddressBlock[]
}

export interface StatusConfig {
  /** The path of the status page (query string ignored); its JSON twin is `<path>.json`. */
  path: string
  /** The clients that may see it; anyone else gets 404. */
  allow: AddressBlock[]
}

export interface ServerConfig {
  listen: ListenAddress
  /** Absolute path of the static files folder. */
  publicDir: string
  /** Whether names starting with a dot are served from publicDir (`.well-known/` always is). */
  allowDotfiles: boolean
  /** `server.static`'s rules beyond the folder: extensions, try_files, trailing slashes, Cache-Control. */
  staticRules: StaticRules
  /** Absolute path of the configured maintenance page, or null (server falls back to <publicDir>/503.html, then a built-in page). */
  maintenancePage: string | null
  /** The health check path, or null. */
  healthCheck: string | null
  /** What Navigator answers on healthCheck; null when it is proxied to the app (or there is no health check). */
  healthCheckResponse: HealthCheckResponse | null
  idle: IdleConfig | null
  /** Prometheus metrics, or null when off. */
  metrics: MetricsConfig | null
  /** The status page, or null when off. */
  status: StatusConfig | null
  /** server.hostname in lower case: a request for another host gets 421; null = every host. */
  hostname: string | null
  /** server.root_path without a trailing slash ("/showcase"): static files are looked up below it; null = "/". */
  rootPath: string | null
  /** server.trust_proxy; null when absent (then trusted on a Fly Machine only). */
  trustProxy: boolean | null
  /** server.bot_detection; a tenant's own replaces it for the requests routed to that tenant. */
  botDetection: BotDetectionConfig
  /** server.disable_compression: proxied responses are never compressed. */
  disableCompression: boolean
  shutdownTimeoutMs: number
  /** `server.cgi_scripts`, in the order given. */
  cgiScripts: CgiScriptConfig[]
}

/** `server.cgi_scripts`: a program run as a CGI/1.1 script on one path. */
export interface CgiScriptConfig {
  /** The request path that runs it (exact match). */
  path: string
  /** Absolute path of the executable. */
  script: string
  /** Upper case; null = every method. */
  method: string | null
  /** `user` and `group` as written, or null. */
  user: string | null
  group: string | null
  /** The uid and gid to run it as (`user` and `group`, looked up when loaded), or null: Navigator's own. */
  uid: number | null
  gid: number | null
  /** Users of `auth` who may run it; empty = whoever auth lets through. */
  allowedUsers: string[]
  env: Record<string, string>
  /** Absolute path of the file to reload after an exit with 0, or null. */
  reloadConfig: string | null
  /** 0 = no limit. */
  timeoutMs: number
}

export type BotAction = 'reject' | 'ignore' | 'static-only'

/** `bot_detection`: what a request whose User-Agent is a bot's may reach. */
export interface BotDetectionConfig {
  enabled: boolean
  action: BotAction
}

/** `server.health_check`'s own answer. */
export interface HealthCheckResponse {
  status: number
  body: string
  /** name (in lower case) -> value, checked to be sendable. */
  headers: Record<string, string>
}

/** `routes.reverse_proxies`: one route to any HTTP server. */
export interface ReverseProxyRule {
  /** The configured name, else `reverse_proxies.<index>`: for logs. */
  name: string
  /** Matched on the request path; null when prefix is given. */
  pattern: RegExp | null
  /** The path prefix; null when pattern is given. */
  prefix: string | null
  /** An http(s) URL; with pattern it may hold $1, $2 ... */
  target: string
  stripPath: boolean
  /** Request headers for the target, names in lower case; values may hold $host, $remote_addr, $scheme. */
  headers: Record<string, string>
  /** Names in lower case. */
  responseHeaders: Record<string, string>
  websocket: boolean
}

/** `cable`: the TurboCable hub. */
export interface CableConfig {
  enabled: boolean
  /** Where the hub's WebSockets are opened (matched on the original path). */
  path: string
  /** Where the apps POST their broadcasts, from this computer only. */
  broadcastPath: string
}

export interface MaintenanceConfig {
  /** Dynamic requests get the maintenance page (server.maintenancePage). */
  enabled: boolean
}

export interface CacheControlRule {
  maxAgeMs: number
  immutable: boolean
}

export interface CacheControlOverride extends CacheControlRule {
  /** Path prefix, matched on the forwarded path. */
  path: string
}

export interface StaticRules {
  /** Lower-case extensions without their dot; null: every extension. */
  allowedExtensions: string[] | null
  /** Suffixes tried in order for a path that is no file (".html", "index.html"). */
  tryFiles: string[]
  normalizeTrailingSlashes: boolean
  cacheControl: {
    /** For a file no override matches; null: @fastify/static's `public, max-age=0`. */
    default: CacheControlRule | null
    overrides: CacheControlOverride[]
  }
}

export interface RewriteRule {
  pattern: RegExp
  rewrite: string
  /** The status of a redirect to `rewrite`; null: the path is rewritten instead. */
  redirectStatus: number | null
}

export type ReplayTarget =
  | { kind: 'region', regions: string[] }
  | { kind: 'app', app: string }
  | { kind: 'machine', machine: string }

export interface ReplayRule {
  /** Compiled from `path`, matched on the original request path. */
  path: RegExp
  target: ReplayTarget
  status: number
  /** Upper-case method names, or null for every method. */
  methods: string[] | null
}

export interface StickySessionsConfig {
  enabled: boolean
  cookieName: string
  /** 0 = a session cookie (no Max-Age). */
  cookieMaxAgeMs: number
  cookieSecure: boolean
  cookieHttpOnly: boolean
  cookieSameSite: SameSite
  cookiePath: string
  /** The Domain attribute, or null for none. */
  cookieDomain: string | null
  cookiePartitioned: boolean
  /** Lower-case name of the request header that pins like the cookie when there is no cookie, or null. */
  headerName: string | null
  paths: string[]
  fallbackMode: FallbackMode
  /** Signing secrets; the first signs, all verify. Empty = unsigned cookie. */
  secrets: string[]
  replayTimeoutMs: number
  replayCache: boolean
  directProxy: DirectProxyMode
  /** Port of the Flycast service; null = the port Navigator listens on. */
  flycastPort: number | null
  /** Origin used instead of http://<app>.flycast:<port>, or null. */
  flycastUrl: string | null
  /** machine id -> base URL (http://host:port) for static discovery and the direct proxy. */
  peers: Record<string, string>
  /** Every response on a sticky path says what was decided (`x-navigator-sticky`). */
  debugHeader: boolean
}

export interface RoutesConfig {
  /** `routes.redirects`, as rules whose redirectStatus is set; tried before `rewrites`. */
  redirects: RewriteRule[]
  rewrites: RewriteRule[]
  reverseProxies: ReverseProxyRule[]
  fly: {
    replay: ReplayRule[]
    stickySessions: StickySessionsConfig
    /** Largest body (Content-Length, bytes) answered with fly-replay; larger or unknown-length bodies are proxied. */
    maxReplayBody: number
    /** How long a connection to another Machine may go without accepting a byte of the request body. */
    peerWriteTimeoutMs: number
  }
}

/**
 * Tenant `command`, `args` and `env` values keep their `${name}` references:
 * the supervisor resolves them at spawn time from the tenant's `var`, then PORT,
 * then the environment. The loader has already checked that every name resolves.
 */
export interface TenantConfig {
  name: string
  /** URL prefix, normalised without a trailing slash (except "/"). */
  path: string
  /** Absolute working directory (relative ones resolve against the config file's folder). */
  workingDir: string
  var: Record<string, string>
  start: StartMode
  env: Record<string, string>
  /** Tenant-level override of applications.command / args, when given. */
  command: string | null
  args: string[] | null
  /** Absolute folder of this tenant's static files (tenant public_dir), or null; absent = none (the loader always sets it). */
  publicDir?: string | null
  /** The tenant's own bot_detection, replacing server.botDetection for its requests; null or absent = the server's. */
  botDetection?: BotDetectionConfig | null
  /** hooks.tenant first, then the tenant's own; absent = none (the loader always sets it). */
  hooks?: TenantHooks
  // Overrides of the applications-wide values; null (or absent) = use those. The loader always sets them.
  healthCheck?: string | null
  startupTimeoutMs?: number | null
  trackWebSockets?: boolean | null
  /** Bytes. */
  memoryLimit?: number | null
  user?: string | null
  group?: string | null
}

export interface StandaloneServerConfig {
  name: string
  /** Pattern with the sticky path rules ("/cable", "/app/*", "*\/admin"). */
  matchPath: string
  command: string
  args: string[]
  workingDir: string
  port: number
  /** Fully substituted from the environment at load time. */
  env: Record<string, string>
}

/** A `managed_processes` entry: a long-running process that serves no HTTP. */
export interface ManagedProcessConfig {
  name: string
  command: string
  args: string[]
  /** Absolute (relative ones resolve against the config file's folder). */
  workingDir: string
  /** Fully substituted from the environment at load time. */
  env: Record<string, string>
  autoRestart: boolean
  startDelayMs: number
}

/** A hook: `command` and `args` keep their `${name}` references, resolved when it runs. */
export interface HookConfig {
  command: string
  args: string[]
  /** 0 = no limit. */
  timeoutMs: number
  /** Absolute path of the file to reload after success (server hooks only), or null. */
  reloadConfig: string | null
}

export interface TenantHooks {
  start: HookConfig[]
  stop: HookConfig[]
}

export interface ServerHooks {
  start: HookConfig[]
  ready: HookConfig[]
  idle: HookConfig[]
  resume: HookConfig[]
  /** Run at shutdown, once the children are stopped. */
  stop: HookConfig[]
}

export interface ApplicationsConfig {
  /** Raw values (with ${var} references) applied to every tenant. */
  env: Record<string, string>
  command: string
  args: string[]
  startPort: number
  startupTimeoutMs: number
  /** 0 = never stop an idle tenant. */
  idleTimeoutMs: number
  healthCheck: string
  tenants: TenantConfig[]
  standaloneServers: StandaloneServerConfig[]
  /** At most this many tenants run at once (the least recently used idle one makes room); 0 = no limit. */
  maxSize?: number
  /** Run tenants as this user / group (names or numbers); null = as Navigator. Needs Navigator to run as root. */
  user?: string | null
  group?: string | null
  /** Default cgroup v2 memory.max of a tenant, in bytes; null = none. */
  memoryLimit?: number | null
  /** Wait this long after a tenant is spawned before its first health check. */
  startDelayMs?: number
  /** The environment variable a tenant's port is passed in, besides PORT. */
  portEnvVar?: string
  /** Open WebSockets keep a tenant from being stopped as idle (and from making room under maxSize). */
  trackWebSockets?: boolean
}

export interface AuthPattern {
  /** Compiled from `pattern`, matched on the request path (and on the forwarded path, when a rewrite changed it). */
  pattern: RegExp
  /** A realm to ask a password for, or null for `action: "off"` (no password). */
  realm: string | null
}

/** `auth`: HTTP Basic authentication; null in NavigatorConfig when absent or not enabled. */
export interface AuthConfig {
  realm: string
  /** Absolute path of the htpasswd file. */
  htpasswd: string
  /** As written (see the schema for their forms); the server compiles them. */
  publicPaths: string[]
  authPatterns: AuthPattern[]
}

export interface NavigatorConfig {
  /** Absolute path of the file this came from, or null when parsed from a string. */
  file: string | null
  /** Deprecated forms the file uses (older Go Navigator spellings), each with what to write instead; empty when none. */
  warnings: ConfigProblem[]
  /** Folder relative paths resolve against. */
  dir: string
  server: ServerConfig
  routes: RoutesConfig
  applications: ApplicationsConfig
  logging: LoggingConfig
  /** Started before Navigator listens, in this order; stopped in reverse order after the tenants. */
  managedProcesses: ManagedProcessConfig[]
  /** HTTP Basic authentication, or null when off. */
  auth: AuthConfig | null
  maintenance: MaintenanceConfig
  cable: CableConfig
  /** hooks.server (the tenant hooks are in each TenantConfig). */
  serverHooks: ServerHooks
}

export interface LoggingConfig {
  format: 'json' | 'text'
  /** Absolute path of the log file (`{{app}}` kept, replaced by each process's name), or null: stdout only. */
  file: string | null
}

export interface ConfigProblem {
  file: string
  line: number
  column: number
  /** Dotted key path, e.g. "routes.fly.sticky_sessions.cookie_samesite" or "applications.tenants.0.path". */
  path: string
  message: string
}
