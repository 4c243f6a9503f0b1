// The TypeBox schema of the YAML file (snake_case, as users write it). Every node
// carries a description and, when optional, its default: reference.ts renders the
// documentation from them and json-schema.ts exports them for editors.
// Rules a schema cannot express well (one replay target, unique tenants, regexes,
// ${NAME} resolution, ...) live in load.ts.

import { Type, type Static, type TSchema } from 'typebox'
import { CACHE_DURATION_PATTERN, DURATION_PATTERN } from './duration.js'
import { MEMORY_SIZE_PATTERN } from './memory-size.js'
import {
  DEFAULT_ALLOW_DOTFILES,
  DEFAULT_NORMALIZE_TRAILING_SLASHES,
  DEFAULT_REDIRECT_STATUS,
  DEFAULT_PUBLIC_DIR,
  DEFAULT_SHUTDOWN_TIMEOUT,
  DEFAULT_IDLE_ACTION,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_IDLE_API_SOCKET,
  DEFAULT_METRICS_PATH,
  DEFAULT_METRICS_ALLOW,
  DEFAULT_STATUS_PATH,
  DEFAULT_STATUS_ALLOW,
  DEFAULT_BOT_DETECTION_ACTION,
  DEFAULT_STICKY_DEBUG_HEADER,
  DEFAULT_COOKIE_NAME,
  DEFAULT_COOKIE_MAX_AGE,
  DEFAULT_COOKIE_SAMESITE,
  DEFAULT_COOKIE_SECURE,
  DEFAULT_COOKIE_HTTP_ONLY,
  DEFAULT_REPLAY_CACHE,
  DEFAULT_COOKIE_PATH,
  DEFAULT_COOKIE_PARTITIONED,
  DEFAULT_DIRECT_PROXY,
  DEFAULT_MAX_REPLAY_BODY,
  DEFAULT_PEER_WRITE_TIMEOUT,
  DEFAULT_FALLBACK_MODE,
  DEFAULT_REPLAY_TIMEOUT,
  DEFAULT_REPLAY_STATUS,
  DEFAULT_TENANT_COMMAND,
  DEFAULT_TENANT_ARGS,
  DEFAULT_START_PORT,
  DEFAULT_STARTUP_TIMEOUT,
  DEFAULT_IDLE_TENANT_TIMEOUT,
  DEFAULT_TENANT_HEALTH_CHECK,
  DEFAULT_TENANT_START,
  DEFAULT_MAX_SIZE,
  DEFAULT_PORT_ENV_VAR,
  DEFAULT_TENANT_START_DELAY,
  DEFAULT_TRACK_WEBSOCKETS,
  DEFAULT_LOG_FORMAT,
  DEFAULT_MANAGED_AUTO_RESTART,
  DEFAULT_MANAGED_START_DELAY,
  DEFAULT_AUTH_REALM,
  DEFAULT_CABLE_ENABLED,
  DEFAULT_CABLE_PATH,
  DEFAULT_CABLE_BROADCAST_PATH
} from './defaults.js'

/** Extra annotation read by the error reporter: the message for a value that matches none of a union. */
export interface ErrorMessageAnnotation {
  errorMessage?: string
}

const DURATION_MESSAGE = 'must be a Go duration such as 500ms, 30m, 2h or 1h30m'

function duration (description: string, defaultValue?: string): TSchema {
  return Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Literal(0)], {
    description: `${description}.`,
    errorMessage: DURATION_MESSAGE,
    ...(defaultValue === undefined ? {} : { default: defaultValue })
  })
}

function oneOf (values: readonly string[], description: string, defaultValue: string): TSchema {
  return Type.Union(values.map((value) => Type.Literal(value)), {
    description,
    default: defaultValue,
    errorMessage: `must be one of ${values.join(', ')}`
  })
}

const stringMap = (description: string): TSchema =>
  Type.Record(Type.String(), Type.String(), { description, default: {} })

const stringList = (description: string, defaultValue?: readonly string[]): TSchema =>
  Type.Array(Type.String(), {
    description,
    ...(defaultValue === undefined ? {} : { default: [...defaultValue] })
  })

const port = (description: string, defaultValue?: number): TSchema =>
  Type.Integer({
    minimum: 1,
    maximum: 65535,
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue })
  })

const strict = { additionalProperties: false } as const

const memorySize = (description: string): TSchema =>
  Type.Union([Type.String({ pattern: MEMORY_SIZE_PATTERN }), Type.Integer({ minimum: 1 })], {
    description,
    errorMessage: 'must be a memory size such as 512M, 1G, 1.5G or 256Mi, or a number of bytes'
  })

/** A key that is off unless given a string: absent (or `null`) renders as "none" in the reference. */
const optionalString = (description: string, errorMessage: string): TSchema =>
  Type.Union([Type.String({ minLength: 1 }), Type.Null()], { description, default: null, errorMessage })

export const IdleSchema = Type.Object({
  action: Type.Optional(oneOf(['suspend', 'stop'], 'What to ask the Machines API to do with this Machine when it is idle.', DEFAULT_IDLE_ACTION)),
  timeout: Type.Optional(duration('How long the Machine must have no request in flight and no open WebSocket before it is suspended or stopped', DEFAULT_IDLE_TIMEOUT)),
  api_socket: Type.Optional(Type.String({ minLength: 1, description: "Unix socket of Fly's Machines API.", default: DEFAULT_IDLE_API_SOCKET }))
}, { ...strict, description: 'Suspend or stop this Fly Machine when it has been idle; absent = never.' })

export const MetricsSchema = Type.Object({
  path: Type.Optional(Type.String({ minLength: 1, description: 'Path the Prometheus metrics are answered on (query string ignored). On the main port it is never passed to an app: a client that may not read the metrics gets 404 there.', default: DEFAULT_METRICS_PATH })),
  listen: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.String(), Type.Null()], {
    description: 'A listener of their own for the metrics: a port, ":port", "host:port" or "[ipv6]:port" (a bare port listens on "::"). Absent: they are answered on the main port. A change needs a restart.',
    default: null,
    errorMessage: 'must be a port number or a "host:port" string'
  })),
  allow: Type.Optional(stringList('Clients that may read the metrics: IP addresses or blocks (`10.0.0.0/8`, `fdaa::/16`). A request that came through a proxy (it carries `Fly-Client-IP`, `X-Forwarded-For`, `Forwarded` or `Via`) never may. Everyone else gets 404.', DEFAULT_METRICS_ALLOW))
}, { ...strict, description: 'Prometheus metrics of Navigator (requests by step, sticky decisions, upstream latency, processes); absent = off. Read at start: a reload that changes them keeps the running ones, with a warning.' })

export const StatusSchema = Type.Object({
  path: Type.Optional(Type.String({ minLength: 1, description: 'Path of the status page (query string ignored); its JSON twin is the same path with `.json` added. Neither is ever passed to an app: a client that may not see the page gets 404.', default: DEFAULT_STATUS_PATH })),
  allow: Type.Optional(stringList('Clients that may see the status page: IP addresses or blocks (`10.0.0.0/8`, `fdaa::/16`). A request that came through a proxy (it carries `Fly-Client-IP`, `X-Forwarded-For`, `Forwarded` or `Via`) never may. With `auth` on and the page\'s path not among its public paths, a client that passes auth (from anywhere, through a proxy too) also may, and one without the right password gets 401. Everyone else gets 404.', DEFAULT_STATUS_ALLOW))
}, { ...strict, description: 'A live HTML page of this Machine on the main port: its identity, its tenants and standalone servers, the sticky-session counters and the recent fallbacks; absent = off. Read at start: a reload that changes it keeps the running one, with a warning.' })

function cacheDuration (description: string): TSchema {
  return Type.Union([Type.String({ pattern: CACHE_DURATION_PATTERN }), Type.Literal(0)], {
    description,
    errorMessage: 'must be a Go duration, or days, weeks or years (365 days), such as 0, 5m, 24h, 7d, 1w or 1y'
  })
}

export const CacheControlOverrideSchema = Type.Object({
  path: Type.String({ pattern: '^/', description: 'Path prefix of the files it applies to ("/assets/"), matched on the forwarded path; the first override that matches wins.' }),
  max_age: cacheDuration('How long a browser may keep the file without asking again (`max-age`); at most 1y.'),
  immutable: Type.Optional(Type.Boolean({ description: 'Add `immutable`: the file never changes under this name (fingerprinted assets).', default: false }))
}, { ...strict, description: 'Cache-Control for the files under one path prefix.' })

export const CacheControlSchema = Type.Object({
  default: Type.Optional(cacheDuration('max-age of a file no override matches. Absent: `public, max-age=0` (always revalidate).')),
  default_immutable: Type.Optional(Type.Boolean({ description: 'Add `immutable` to the default (only with `default`).', default: false })),
  overrides: Type.Optional(Type.Array(CacheControlOverrideSchema, { description: 'Per path prefix, tried in order.', default: [] }))
}, { ...strict, description: 'The Cache-Control header of static files; ETag and Last-Modified (and their 304s) apply whatever it says.' })

const TRY_FILE_SUFFIX = '^/?(?!\\.\\.?$)[^/\\\\\\u0000]+$'

export const StaticSchema = Type.Object({
  public_dir: Type.Optional(Type.String({ minLength: 1, description: "Folder of static files, relative to the config file's folder.", default: DEFAULT_PUBLIC_DIR })),
  allow_dotfiles: Type.Optional(Type.Boolean({ description: 'Serve files and folders whose name starts with a dot (`.env`, `.git/`) from public_dir. Off: they are not static files (the request goes on to the apps), except under `.well-known/`.', default: DEFAULT_ALLOW_DOTFILES })),
  allowed_extensions: Type.Optional(Type.Array(Type.String({ pattern: '^\\.?[A-Za-z0-9_-]+$' }), { description: 'Only files with one of these extensions (`css`, `js`; any case, a leading dot optional) are static files; any other request goes on to the apps. Absent: every extension.' })),
  try_files: Type.Optional(Type.Array(Type.String({ pattern: TRY_FILE_SUFFIX }), { description: 'Tried in order when the path is no file: a suffix starting with a dot is added to the path (`/about` → `/about.html`), any other is a file in the folder the path names (`/docs` → `/docs/index.html`; the Go form `/index.html` means the same). A candidate is served under the same rules as the path itself (inside public_dir, no dotfiles, allowed_extensions).', default: [] })),
  normalize_trailing_slashes: Type.Optional(Type.Boolean({ description: 'A folder of public_dir asked for without its trailing slash (`/docs`) and holding an index.html is redirected (301) to `/docs/`, so that the relative links of the page resolve inside it.', default: DEFAULT_NORMALIZE_TRAILING_SLASHES })),
  cache_control: Type.Optional(CacheControlSchema)
}, { ...strict, description: 'Static files served before any routing.', default: {} })

export const HealthCheckResponseSchema = Type.Object({
  status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: 'HTTP status of the answer.', default: 200 })),
  body: Type.Optional(Type.String({ description: 'Body of the answer.', default: '' })),
  headers: Type.Optional(stringMap('Headers of the answer (name: value).'))
}, { ...strict, description: 'The answer Navigator gives on the health check path itself.' })

export const HealthCheckSchema = Type.Object({
  path: Type.String({ minLength: 1, description: 'Health check path, such as /up (query string ignored).' }),
  response: Type.Optional(HealthCheckResponseSchema)
}, { ...strict, description: 'The health check; without response it is proxied to the app.' })

export const CgiScriptSchema = Type.Object({
  path: Type.String({ minLength: 1, description: 'The request path that runs the script (exact match, query string ignored).' }),
  script: Type.String({ minLength: 1, description: 'The executable, relative to the config file\'s folder; it runs in that folder.' }),
  method: Type.Optional(optionalString('The one HTTP method that runs it (GET, POST ...); another method gets 405 with `Allow`. Absent: every method.', 'must be an HTTP method such as GET or POST')),
  user: Type.Optional(optionalString('Run the script as this Unix user (a name or a numeric id); only when Navigator runs as root.', 'must be a user name')),
  group: Type.Optional(optionalString('Run the script with this Unix group (a name or a numeric id); absent: the user\'s primary group. Only when Navigator runs as root.', 'must be a group name')),
  allowed_users: Type.Optional(stringList('Users of `auth` who may run it (another gets 403, no password 401), even on a public path. Absent or empty: whoever `auth` lets through.', [])),
  env: Type.Optional(stringMap('Environment of the script, on top of Navigator\'s and the CGI variables.')),
  reload_config: Type.Optional(optionalString('After the script exits with 0, reload the configuration from this file (relative to the config file\'s folder) when it is another file than the current one, or was changed while the script ran; the answer ends once the reload is done.', 'must be a file path')),
  timeout: Type.Optional(duration('Kill the script (its whole process group) when it runs longer; the client gets 504 when nothing was sent yet; 0 = no limit', '0'))
}, { ...strict, description: 'A CGI script: a request on `path` runs `script` with the request in its environment and its body on stdin; its output (CGI headers, a blank line, the body) is the answer.' })

export const BotDetectionSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'Tell bots (crawlers, link previewers, monitors: the `isbot` package\'s list of User-Agents) from browsers and treat them by `action`.', default: false })),
  action: Type.Optional(oneOf(['reject', 'ignore', 'static-only'], 'reject: 403 for every request of a bot (the health check, the metrics, the status page and redirects aside), so no app is woken for it; ignore: bots are treated as anyone; static-only: a bot gets the static files and 403 for anything else.', DEFAULT_BOT_DETECTION_ACTION))
}, { ...strict, description: 'What a bot may reach; off unless enabled.' })

export const ServerSchema = Type.Object({
  listen: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.String()], {
    description: 'Port (3000), ":port", "host:port" or "[ipv6]:port". A bare port listens on "::" (IPv6 and IPv4).',
    default: 3000,
    errorMessage: 'must be a port number or a "host:port" string'
  })),
  static: Type.Optional(StaticSchema),
  hostname: Type.Optional(optionalString('The host name this site answers to (`example.com`; any case, no port). A request whose Host names another host (X-Forwarded-Host when X-Forwarded-* are trusted) gets 421, after the health check, the metrics and the status page; `localhost` is also 127.0.0.1 and [::1]. Absent: every host.', 'must be a host name such as example.com')),
  root_path: Type.Optional(optionalString('The URL prefix the site lives under (`/showcase`): a static file of public_dir is looked up with the prefix removed (`/showcase/app.css` is `public/app.css`), and the prefix alone is redirected to it with a slash. Tenants and routes match the whole path as written. Absent: the site is at `/`.', 'must be a URL path such as /showcase')),
  trust_proxy: Type.Optional(Type.Boolean({ description: 'Trust the X-Forwarded-For, -Proto and -Host a client sends (true only when every client is a proxy of yours): the apps get them with this peer appended to X-Forwarded-For, and `$remote_addr`, `$scheme` and `$host` of reverse proxy headers use them. false: they are replaced by what Navigator sees. Absent: true on a Fly Machine (every request comes through Fly\'s proxy), false elsewhere.' })),
  bot_detection: Type.Optional(BotDetectionSchema),
  maintenance_page: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
    description: 'HTML file answered with 503 when an app is unavailable; relative to public_dir. Absent: `503.html` in public_dir if it exists, else a built-in page.',
    default: null,
    errorMessage: 'must be a file path'
  })),
  health_check: Type.Optional(Type.Union([Type.String({ minLength: 1 }), HealthCheckSchema, Type.Null()], {
    description: 'Health check path. A path (`/up`): Navigator itself answers 200 `OK`. A mapping `{ path, response: { status, body, headers } }`: Navigator answers with that response (status 200 and an empty body unless given); without `response` the check is proxied to the tenant whose path prefix the check\'s path is in (routed as any request is, but before rewrites, auth and maintenance mode). Absent = none.',
    default: null,
    errorMessage: 'must be a path such as /up, or a mapping with path and, optionally, response'
  })),
  idle: Type.Optional(IdleSchema),
  metrics: Type.Optional(MetricsSchema),
  status: Type.Optional(StatusSchema),
  disable_compression: Type.Optional(Type.Boolean({ description: 'Send proxied responses as the app wrote them. Off (the default): a text response of 1 KiB or more is compressed with brotli or gzip when the client accepts one.', default: false })),
  shutdown_timeout: Type.Optional(duration('How long in-flight requests may drain on SIGTERM', DEFAULT_SHUTDOWN_TIMEOUT)),
  cgi_scripts: Type.Optional(Type.Array(CgiScriptSchema, { description: 'Programs run as CGI/1.1 scripts on a path of their own (after auth, before anything is replayed or proxied).', default: [] }))
}, { ...strict, description: 'The listening server.', default: {} })

const redirectStatus = (description: string): TSchema => Type.Union([301, 302, 303, 307, 308].map((code) => Type.Literal(code)), {
  description,
  default: DEFAULT_REDIRECT_STATUS,
  errorMessage: 'must be a redirect status: 301, 302, 303, 307 or 308'
})

export const RewriteSchema = Type.Object({
  pattern: Type.String({ minLength: 1, description: 'JavaScript regular expression matched on the request path.' }),
  rewrite: Type.String({ description: 'Replacement path; $1, $2 ... refer to the groups of pattern.' }),
  redirect: Type.Optional(Type.Boolean({ description: 'Answer with a redirect to the replacement (the query string kept) instead of rewriting the path.', default: false })),
  status: Type.Optional(redirectStatus('Status of the redirect, with `redirect: true`.'))
}, { ...strict, description: 'A path rewrite or redirect; the first matching rule (of routes.redirects, then routes.rewrites) wins.' })

export const RedirectSchema = Type.Object({
  from: Type.String({ minLength: 1, description: 'JavaScript regular expression matched on the request path.' }),
  to: Type.String({ minLength: 1, description: 'Where to: a path or a URL; $1, $2 ... refer to the groups of from. The query string is kept.' }),
  status: Type.Optional(redirectStatus('Status of the redirect.'))
}, { ...strict, description: 'A redirect; tried before routes.rewrites.' })

export const ReplayRuleSchema = Type.Object({
  path: Type.String({ minLength: 1, description: 'JavaScript regular expression matched on the original request path.' }),
  region: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
    description: 'Target region(s) in order of preference: a code, a comma-separated string or a list. Exactly one of region, app, machine.',
    errorMessage: 'must be a region code, a comma-separated string of codes, or a list of codes'
  })),
  app: Type.Optional(Type.String({ minLength: 1, description: 'Target Fly app. Exactly one of region, app, machine.' })),
  machine: Type.Optional(Type.String({ minLength: 1, description: 'Target Machine ID. Exactly one of region, app, machine.' })),
  status: Type.Optional(Type.Integer({ minimum: 300, maximum: 499, description: 'HTTP status of the replay response (300 to 499).', default: DEFAULT_REPLAY_STATUS })),
  methods: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'HTTP methods the rule applies to (any case); absent = every method.' }))
}, { ...strict, description: 'A Fly-Replay rule; the first rule whose path (and method) matches answers with fly-replay.' })

export const StickySessionsSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'Turn sticky sessions on.', default: false })),
  cookie_name: Type.Optional(Type.String({ minLength: 1, description: 'Name of the cookie that holds the Machine ID.', default: DEFAULT_COOKIE_NAME })),
  cookie_max_age: Type.Optional(duration('Lifetime of the cookie; it slides while the user is active. 0 = a session cookie (no Max-Age: the browser forgets it when it closes)', DEFAULT_COOKIE_MAX_AGE)),
  cookie_secure: Type.Optional(Type.Boolean({ description: 'Send the Secure attribute (HTTPS only).', default: DEFAULT_COOKIE_SECURE })),
  cookie_httponly: Type.Optional(Type.Boolean({ description: 'Send the HttpOnly attribute.', default: DEFAULT_COOKIE_HTTP_ONLY })),
  cookie_samesite: Type.Optional(Type.String({
    pattern: '^(?:[Ss][Tt][Rr][Ii][Cc][Tt]|[Ll][Aa][Xx]|[Nn][Oo][Nn][Ee])$',
    description: 'SameSite attribute: Strict, Lax or None, in any case. None requires cookie_secure: true.',
    default: DEFAULT_COOKIE_SAMESITE,
    errorMessage: 'must be Strict, Lax or None'
  })),
  cookie_path: Type.Optional(Type.String({ minLength: 1, description: 'Path attribute of the cookie.', default: DEFAULT_COOKIE_PATH })),
  cookie_domain: Type.Optional(optionalString('Domain attribute of the cookie (a host such as example.com: the cookie is then sent to its subdomains too). Absent = no Domain: only the host that set it gets it back.', 'must be a domain name such as example.com')),
  cookie_partitioned: Type.Optional(Type.Boolean({ description: 'Send the Partitioned attribute (the browser keeps the cookie per top-level site: for an app embedded in other sites). Requires cookie_secure: true and cookie_samesite: None.', default: DEFAULT_COOKIE_PARTITIONED })),
  header_name: Type.Optional(optionalString('A request header that pins like the cookie when the cookie is absent (the same value, validated and signed alike); every response on a sticky path served here carries it with this Machine\'s value. For clients without cookies, and for Fly\'s replay_cache with `type = "header"`. Absent = none.', 'must be a header name such as x-machine')),
  paths: Type.Optional(stringList('Sticky paths: "/cable" exact, "/app/*" the prefix and below, "*/admin" a suffix. Empty = every path.', [])),
  fallback_mode: Type.Optional(oneOf(['maintenance', 'route_to_available'], 'What to do when the Machine in the cookie is unavailable: serve the maintenance page, or serve here and re-pin the cookie.', DEFAULT_FALLBACK_MODE)),
  secret: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
    description: 'Signs the cookie (HMAC-SHA256). A list rotates keys: the first signs, all verify. Absent = unsigned.',
    errorMessage: 'must be a non-empty string or a list of non-empty strings'
  })),
  replay_timeout: Type.Optional(duration('How long Fly may try to reach the target Machine before handing the request back', DEFAULT_REPLAY_TIMEOUT)),
  replay_cache: Type.Optional(Type.Boolean({ description: "Sticky replays are `prefer_instance=<machine>` alone, which Fly's session replay cache can keep (no state, timeout or fallback); a request Fly could not deliver there arrives with `fly-preferred-instance-unavailable` and gets fallback_mode.", default: DEFAULT_REPLAY_CACHE })),
  direct_proxy: Type.Optional(oneOf(['vm', 'flycast'], 'How a body too large to replay reaches the Machine in the cookie. vm: straight to `<machine>.vm.<app>.internal` over the private network, which cannot wake a stopped or suspended Machine. flycast: through Fly\'s proxy at the app\'s Flycast address with `fly-force-instance-id`, which wakes it.', DEFAULT_DIRECT_PROXY)),
  flycast_port: Type.Optional(port('Port of the app\'s Flycast service (the external port of a `[[services]]` section with the http handler), for direct_proxy: flycast. Default: the listen port.')),
  flycast_url: Type.Optional(optionalString('Origin (`http://host:port`) used instead of `http://<app>.flycast:<flycast_port>` for direct_proxy: flycast: a Flycast address on a custom private network, or a local stand-in.', 'must be a base URL such as http://my-app.flycast:3000')),
  peers: Type.Optional(Type.Record(Type.String(), Type.String(), {
    description: 'Machine ID to base URL (http://host:port): static discovery and direct-proxy addresses, for tests and non-Fly clusters.',
    default: {}
  })),
  debug_header: Type.Optional(Type.Boolean({ description: 'Every response on a sticky path carries `x-navigator-sticky: <decision>; machine=<id>` (served, replayed, proxied, fallback, re-pinned, routed or rejected=<reason>; the Machine the cookie names afterwards). For troubleshooting: it tells anyone which Machine holds a session.', default: DEFAULT_STICKY_DEBUG_HEADER }))
}, { ...strict, description: 'Cookie-based sticky sessions across Fly Machines.', default: {} })

export const FlySchema = Type.Object({
  replay: Type.Optional(Type.Array(ReplayRuleSchema, { description: 'Fly-Replay rules, tried in order.', default: [] })),
  sticky_sessions: Type.Optional(StickySessionsSchema),
  max_replay_body: Type.Optional(Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    description: 'Largest request body, in bytes, answered with `fly-replay` (replay rules and sticky sessions alike): a Content-Length up to this, or no body. A larger body, or one of unknown length (chunked), is proxied directly. Fly cannot replay more than 1 MB (1,000,000 bytes).',
    default: DEFAULT_MAX_REPLAY_BODY
  })),
  peer_write_timeout: Type.Optional(duration('Time a connection to another Machine may go without progress before the proxy gives up: a connect not made by then gets the sticky fallback_mode (no byte of the request has left; without a fallback, 504); a Machine that, once connected, accepts no byte of the request body for this long while the client sends it ends the request with 504', DEFAULT_PEER_WRITE_TIMEOUT))
}, { ...strict, description: 'Fly.io routing.', default: {} })

export const ReverseProxySchema = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, description: 'A name for logs.' })),
  path: Type.Optional(Type.String({ minLength: 1, description: 'JavaScript regular expression matched on the request path; its groups are $1, $2 ... in target. Exactly one of path and prefix.' })),
  prefix: Type.Optional(Type.String({ minLength: 1, description: 'A path prefix (`/api/`): the request path starts with it. Exactly one of path and prefix.' })),
  target: Type.String({ minLength: 1, description: 'http(s) URL the request goes to: its origin, and a path the request path is appended to. When it uses $1, $2 ... (the groups of path), it is the whole URL asked for (the query string kept).' }),
  strip_path: Type.Optional(Type.Boolean({ description: 'Leave the matched prefix (or the match of path) out of the path sent to target. Ignored when target uses $1, $2 ...', default: false })),
  headers: Type.Optional(stringMap('Request headers set for the target (name: value); `$host`, `$remote_addr` and `$scheme` in a value are the request\'s Host, the client\'s address and http or https.')),
  response_headers: Type.Optional(stringMap('Headers added to the answer (name: value), replacing the target\'s of the same name.')),
  websocket: Type.Optional(Type.Boolean({ description: 'Relay WebSocket upgrades to the target too; otherwise an upgrade on this route gets 400.', default: false }))
}, { ...strict, description: 'A reverse proxy to any HTTP server; the first route whose path or prefix matches the request path takes it.' })

export const RoutesSchema = Type.Object({
  redirects: Type.Optional(Type.Array(RedirectSchema, { description: 'Redirects, tried in order before the rewrites.', default: [] })),
  rewrites: Type.Optional(Type.Array(RewriteSchema, { description: 'Path rewrites (or redirects), tried in order.', default: [] })),
  reverse_proxies: Type.Optional(Type.Array(ReverseProxySchema, { description: 'Reverse proxies to other HTTP servers, tried in order after the sticky sessions and before the standalone servers and tenants.', default: [] })),
  fly: Type.Optional(FlySchema)
}, { ...strict, description: 'Routing rules.', default: {} })

const hookFields = {
  command: Type.String({ minLength: 1, description: 'Program to run (no shell); a name without "/" is looked up on PATH. May use ${name}.' }),
  args: Type.Optional(stringList('Arguments of the program; may use ${name}.', [])),
  timeout: Type.Optional(duration('Kill the hook (its whole process group) when it runs longer; 0 = no limit', '0'))
}

export const TenantHookSchema = Type.Object({
  ...hookFields,
  reload_config: Type.Optional(optionalString('After the hook succeeds, reload the configuration from this file (relative to the config file\'s folder) when it is another file than the current one, or was changed while the hook ran.', 'must be a file path'))
}, { ...strict, description: 'A command run at a moment of a tenant\'s life, with its environment; ${name} resolves from its var, its env, then Navigator\'s environment.' })

export const ServerHookSchema = Type.Object({
  ...hookFields,
  reload_config: Type.Optional(optionalString('After the hook succeeds, reload the configuration from this file (relative to the config file\'s folder) when it is another file than the current one, or was changed while the hook ran.', 'must be a file path'))
}, { ...strict, description: 'A command run at a moment of Navigator\'s life, with Navigator\'s environment.' })

/** One hook or a list of them, run in order; a failed one does not skip the next. */
const hookList = (schema: TSchema, description: string): TSchema =>
  Type.Union([schema, Type.Array(schema)], { description, default: [], errorMessage: 'must be a hook (command, args, timeout) or a list of them' })

export const TenantHooksSchema = Type.Object({
  start: Type.Optional(hookList(TenantHookSchema, 'Run once the tenant is ready, before its first request is proxied.')),
  stop: Type.Optional(hookList(TenantHookSchema, 'Run before the tenant is stopped.'))
}, { ...strict, description: 'Hooks of this tenant, run after those of hooks.tenant.', default: {} })

export const ServerHooksSchema = Type.Object({
  start: Type.Optional(hookList(ServerHookSchema, 'Run before Navigator listens; a failure stops the start (exit 1, with the hook\'s output).')),
  ready: Type.Optional(hookList(ServerHookSchema, 'Run once Navigator listens, without holding up requests.')),
  idle: Type.Optional(hookList(ServerHookSchema, 'Run before the Machine is suspended or stopped (server.idle); the Machines API is called once they are done.')),
  resume: Type.Optional(hookList(ServerHookSchema, 'Run when the first request after a suspend shows the Machine was resumed.')),
  stop: Type.Optional(hookList(ServerHookSchema, 'Run at shutdown (SIGTERM, SIGINT, `navigator -s stop`) once requests have drained and the tenants and managed processes are stopped; each bounded by its timeout, all of them by server.shutdown_timeout. `reload_config` is ignored here.'))
}, { ...strict, description: 'Hooks of Navigator itself.', default: {} })

export const HooksSchema = Type.Object({
  server: Type.Optional(ServerHooksSchema),
  tenant: Type.Optional(Type.Object({
    start: Type.Optional(hookList(TenantHookSchema, 'Run for every tenant once it is ready, before its first request is proxied.')),
    stop: Type.Optional(hookList(TenantHookSchema, 'Run for every tenant before it is stopped.'))
  }, { ...strict, description: 'Hooks of every tenant, run before each tenant\'s own.', default: {} }))
}, { ...strict, description: 'Commands run at moments of the life of Navigator and of its tenants; their output is logged with the hook\'s name.', default: {} })

export const TenantSchema = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, description: 'Unique tenant name, used in logs. Default: the path without its outer slashes (and without server.root_path), `root` for `/`.' })),
  path: Type.String({ minLength: 1, description: 'Unique URL prefix served by this tenant, starting with "/". May be left out when there is one tenant: it is then `/`.' }),
  working_dir: Type.Optional(Type.String({ minLength: 1, description: "Working directory of the process, relative to the config file's folder. Default: that folder." })),
  var: Type.Optional(stringMap('Variables for ${name} in this tenant\'s command, args and env, and in applications.env.')),
  start: Type.Optional(oneOf(['lazy', 'eager'], 'lazy: start on the first request; eager: start at boot.', DEFAULT_TENANT_START)),
  env: Type.Optional(stringMap('Environment of this tenant, on top of applications.env; may use ${name}.')),
  command: Type.Optional(Type.String({ minLength: 1, description: 'Overrides applications.command for this tenant; may use ${name}.' })),
  args: Type.Optional(stringList('Overrides applications.args for this tenant; may use ${name}.')),
  public_dir: Type.Optional(optionalString('A folder of static files of this tenant, relative to the config file\'s folder: a request under the tenant\'s path is looked up in it with the path removed (`/alpha/app.css` is `<public_dir>/app.css`), under the rules of server.static, before server.static.public_dir and before the request reaches the tenant.', 'must be a folder path')),
  bot_detection: Type.Optional(BotDetectionSchema),
  hooks: Type.Optional(TenantHooksSchema),
  health_check: Type.Optional(Type.String({ minLength: 1, description: 'Overrides applications.health_check for this tenant.' })),
  startup_timeout: Type.Optional(duration('Overrides applications.startup_timeout for this tenant')),
  track_websockets: Type.Optional(Type.Boolean({ description: 'Overrides applications.track_websockets for this tenant.' })),
  memory_limit: Type.Optional(memorySize('Overrides applications.memory_limit for this tenant.')),
  user: Type.Optional(Type.String({ minLength: 1, description: 'Overrides applications.user for this tenant.' })),
  group: Type.Optional(Type.String({ minLength: 1, description: 'Overrides applications.group for this tenant.' }))
}, { ...strict, description: 'A tenant: one app process behind a URL prefix.' })

export const StandaloneServerSchema = Type.Object({
  name: Type.String({ minLength: 1, description: 'Unique name, used in logs.' }),
  match_path: Type.String({ minLength: 1, description: 'Requests whose path matches go to this server; same pattern rules as sticky paths.' }),
  command: Type.String({ minLength: 1, description: 'Program to run.' }),
  args: Type.Optional(stringList('Arguments of the program.', [])),
  working_dir: Type.Optional(Type.String({ minLength: 1, description: "Working directory, relative to the config file's folder. Default: that folder." })),
  port: port('Port the server listens on (127.0.0.1).'),
  env: Type.Optional(stringMap('Extra environment of the process.'))
}, { ...strict, description: 'A server started at boot and kept running (for example Action Cable).' })

export const ApplicationsSchema = Type.Object({
  env: Type.Optional(stringMap('Environment of every tenant; ${name} resolves from each tenant\'s var, PORT, then the environment.')),
  command: Type.Optional(Type.String({ minLength: 1, description: 'Default tenant command.', default: DEFAULT_TENANT_COMMAND })),
  args: Type.Optional(stringList('Default tenant arguments.', DEFAULT_TENANT_ARGS)),
  start_port: Type.Optional(port('First port tried for tenant processes.', DEFAULT_START_PORT)),
  startup_timeout: Type.Optional(duration('How long a starting tenant may take before waiting requests get the maintenance page', DEFAULT_STARTUP_TIMEOUT)),
  idle_timeout: Type.Optional(duration('Stop a tenant without requests or WebSockets for this long; 0 = never', DEFAULT_IDLE_TENANT_TIMEOUT)),
  health_check: Type.Optional(Type.String({ minLength: 1, description: 'Readiness probe path of tenants (any HTTP status means ready).', default: DEFAULT_TENANT_HEALTH_CHECK })),
  tenants: Type.Optional(Type.Array(TenantSchema, { description: 'The tenants.', default: [] })),
  standalone_servers: Type.Optional(Type.Array(StandaloneServerSchema, { description: 'Servers started at boot.', default: [] })),
  max_size: Type.Optional(Type.Integer({ minimum: 0, description: 'At most this many tenants run at once: starting one more first stops the least recently used idle one (none with a request in flight or a tracked WebSocket); when every one is busy, the request waits up to the startup timeout for one to become idle, then gets the maintenance page. 0 = no limit.', default: DEFAULT_MAX_SIZE })),
  user: Type.Optional(Type.String({ minLength: 1, description: 'Run tenants as this user (a name or a uid); its primary group unless group says otherwise. Needs Navigator to run as root.' })),
  group: Type.Optional(Type.String({ minLength: 1, description: 'Run tenants with this group (a name or a gid). Needs Navigator to run as root.' })),
  memory_limit: Type.Optional(memorySize('Memory limit of each tenant (cgroup v2 memory.max), such as 512M or 1G (K, M, G, T are 1024-based, with or without i). Where cgroup v2 cannot be written, one warning at start and no limit.')),
  start_delay: Type.Optional(duration('Wait this long after a tenant is spawned before its first health check (the startup timeout still counts from the spawn)', DEFAULT_TENANT_START_DELAY)),
  port_env_var: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'The environment variable a tenant gets its port in; PORT is set too.', default: DEFAULT_PORT_ENV_VAR, errorMessage: 'must be an environment variable name such as PORT or SERVER_PORT' })),
  track_websockets: Type.Optional(Type.Boolean({ description: 'An open WebSocket keeps its tenant from being stopped as idle (idle_timeout) or to make room (max_size). Off: only requests in flight do.', default: DEFAULT_TRACK_WEBSOCKETS }))
}, { ...strict, description: 'The processes behind Navigator.', default: {} })

export const LoggingSchema = Type.Object({
  format: Type.Optional(oneOf(['json', 'text'], 'How log lines are written: json (one JSON object a line) or text (`<time> <LEVEL> <message> key=value ...`, for people and grep). Read at start: a reload that changes it keeps the running format, with a warning.', DEFAULT_LOG_FORMAT)),
  file: Type.Optional(optionalString('Also write the log lines to this file (appended to; it and its folder are created), relative to the config file\'s folder. `{{app}}` in it is a process\'s name: each tenant, standalone server and managed process writes its output to a file of its own, and Navigator\'s own lines go to the file named with `navigator`. Lines still go to stdout too. Read at start: a reload that changes it keeps the running files, with a warning.', 'must be a file path')),
  vector: Type.Optional(Type.Unknown({ description: 'Not supported: Vector is not built in. Run Vector on its own with a `file` source reading the files of `logging.file`.' }))
}, { ...strict, description: 'Navigator\'s own log lines (their level is LOG_LEVEL in the environment).', default: {} })

export const ManagedProcessSchema = Type.Object({
  name: Type.String({ minLength: 1, description: 'Unique name, used in logs (every output line carries it).' }),
  command: Type.String({ minLength: 1, description: 'Program to run (no shell); a name without "/" is looked up on PATH.' }),
  args: Type.Optional(stringList('Arguments of the program.', [])),
  working_dir: Type.Optional(Type.String({ minLength: 1, description: "Working directory, relative to the config file's folder. Default: that folder." })),
  env: Type.Optional(stringMap('Extra environment of the process, on top of Navigator\'s.')),
  auto_restart: Type.Optional(Type.Boolean({ description: 'Start it again, with backoff, when it exits with a failure (a non-zero status or a signal); an exit with status 0 is final.', default: DEFAULT_MANAGED_AUTO_RESTART })),
  start_delay: Type.Optional(Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Integer({ minimum: 0 })], {
    description: 'Wait this long after Navigator starts before starting it: a Go duration, or a number of seconds.',
    errorMessage: 'must be a Go duration such as 500ms or 2s, or a whole number of seconds',
    default: DEFAULT_MANAGED_START_DELAY
  }))
}, { ...strict, description: 'A long-running process that serves no HTTP (a job worker, Redis): started at boot, stopped after the tenants.' })

export const AuthPatternSchema = Type.Object({
  pattern: Type.String({ minLength: 1, description: 'JavaScript regular expression matched on the request path (and on the forwarded path, when a rewrite changed it).' }),
  action: Type.String({ minLength: 1, description: '"off": no password asked; any other value: a password asked, with this as the realm.' })
}, { ...strict, description: 'An auth pattern; the first whose pattern matches decides, before public_paths are looked at.' })

export const AuthSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'Ask for HTTP Basic credentials (checked against htpasswd) before anything is proxied or replayed; static files of public_dir, the health check, the metrics and the status page are answered before it.', default: false })),
  realm: Type.Optional(Type.String({ minLength: 1, description: 'The realm in `WWW-Authenticate: Basic realm="..."` (the name browsers show in their prompt).', default: DEFAULT_AUTH_REALM })),
  htpasswd: Type.Optional(optionalString('The htpasswd file, relative to the config file\'s folder; required when enabled. bcrypt (`$2y$`, `$2a$`, `$2b$`), Apache MD5 (`$apr1$`), MD5-crypt (`$1$`), `{SHA}`, `{SSHA}` and plain text entries. Reread when it changes (looked at once a second), without a reload.', 'must be a file path')),
  public_paths: Type.Optional(stringList('Paths that need no password: "/favicon.ico" exact, "/assets/" the prefix, "/assets/*" everything below /assets/, "*.css" a last segment; `*` and `?` never match "/" except in a final "/*". Matched on the path with its dot segments resolved, and on the forwarded path when a rewrite changed it: both must be public.', [])),
  auth_patterns: Type.Optional(Type.Array(AuthPatternSchema, { description: 'Regular-expression rules, tried in order before public_paths.', default: [] }))
}, { ...strict, description: 'HTTP Basic authentication against an htpasswd file; absent or not enabled = off.', default: {} })

export const MaintenanceSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'Maintenance mode: every request that would reach a tenant, a reverse proxy or a standalone server gets the maintenance page (503). Static files, redirects, the health check, the metrics, the status page and Fly-Replay rules keep working.', default: false })),
  page: Type.Optional(optionalString('The maintenance page, a file in public_dir (`/503.html`): the same setting as server.maintenance_page (give one of them).', 'must be a file path'))
}, { ...strict, description: 'Maintenance mode, and the maintenance page.', default: {} })

export const CableSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'Navigator terminates the WebSockets of `path` itself and fans broadcasts out to them (TurboCable), instead of passing `path` on to a standalone server or an app. Off by default here; the Go Navigator\'s default is on.', default: DEFAULT_CABLE_ENABLED })),
  path: Type.Optional(Type.String({ minLength: 1, description: 'Where browsers open their WebSocket (after auth and sticky sessions, like any request).', default: DEFAULT_CABLE_PATH })),
  broadcast_path: Type.Optional(Type.String({ minLength: 1, description: 'Where the apps POST `{"stream": "...", "data": ...}` to send `data` to every subscriber of the stream. Only from this computer (127.0.0.0/8, ::1): 403 from anywhere else, before auth.', default: DEFAULT_CABLE_BROADCAST_PATH }))
}, { ...strict, description: 'The TurboCable hub: WebSockets subscribed to named streams, and an HTTP endpoint the apps broadcast to.', default: {} })

export const ConfigSchema = Type.Object({
  server: Type.Optional(ServerSchema),
  routes: Type.Optional(RoutesSchema),
  applications: Type.Optional(ApplicationsSchema),
  logging: Type.Optional(LoggingSchema),
  managed_processes: Type.Optional(Type.Array(ManagedProcessSchema, { description: 'Processes started before Navigator listens and kept running (in the order given; stopped in reverse order after the tenants).', default: [] })),
  auth: Type.Optional(AuthSchema),
  maintenance: Type.Optional(MaintenanceSchema),
  hooks: Type.Optional(HooksSchema),
  cable: Type.Optional(CableSchema)
}, {
  ...strict,
  patternProperties: { '^x-': { description: 'Extension keys (x-anything) are ignored: a place to define YAML anchors for reuse.' } },
  title: 'Navigator configuration',
  description: 'The Navigator for Node YAML configuration file.'
})

/** The YAML document after defaults, as the schema describes it. */
export type ConfigDocument = Static<typeof ConfigSchema>
