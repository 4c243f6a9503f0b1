import { test } from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, parseConfig } from '../src/load.js'

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')

test('an empty file gives the default of every key', async (t) => {
  const config = parseConfig('', { dir: '/srv/app', env: {} })
  t.same(config, {
    file: null,
    warnings: [],
    dir: '/srv/app',
    server: {
      listen: { host: '::', port: 3000 },
      publicDir: '/srv/app/public',
      allowDotfiles: false,
      staticRules: {
        allowedExtensions: null,
        tryFiles: [],
        normalizeTrailingSlashes: false,
        cacheControl: { default: null, overrides: [] }
      },
      maintenancePage: null,
      healthCheck: null,
      healthCheckResponse: null,
      idle: null,
      metrics: null,
      status: null,
      hostname: null,
      rootPath: null,
      trustProxy: null,
      botDetection: { enabled: false, action: 'reject' },
      disableCompression: false,
      shutdownTimeoutMs: 30_000,
      cgiScripts: []
    },
    routes: {
      redirects: [],
      rewrites: [],
      reverseProxies: [],
      fly: {
        replay: [],
        stickySessions: {
          enabled: false,
          cookieName: '_navigator_machine',
          cookieMaxAgeMs: 86_400_000,
          cookieSecure: false,
          cookieHttpOnly: true,
          cookieSameSite: 'Lax',
          cookiePath: '/',
          cookieDomain: null,
          cookiePartitioned: false,
          headerName: null,
          paths: [],
          fallbackMode: 'maintenance',
          secrets: [],
          replayTimeoutMs: 10_000,
          replayCache: false,
          directProxy: 'vm',
          flycastPort: null,
          flycastUrl: null,
          peers: {},
          debugHeader: false
        },
        maxReplayBody: 1_000_000,
        peerWriteTimeoutMs: 5_000
      }
    },
    applications: {
      env: {},
      command: 'bin/rails',
      args: ['server', '-b', '127.0.0.1', '-p', '${PORT}'],
      startPort: 4000,
      startupTimeoutMs: 60_000,
      idleTimeoutMs: 600_000,
      healthCheck: '/up',
      tenants: [],
      standaloneServers: [],
      maxSize: 0,
      user: null,
      group: null,
      memoryLimit: null,
      startDelayMs: 0,
      portEnvVar: 'PORT',
      trackWebSockets: true
    },
    logging: { format: 'json', file: null },
    managedProcesses: [],
    auth: null,
    maintenance: { enabled: false },
    cable: { enabled: false, path: '/cable', broadcastPath: '/_broadcast' },
    serverHooks: { start: [], ready: [], idle: [], resume: [], stop: [] }
  })
})

test('keys written without a value take their defaults', async (t) => {
  const config = parseConfig('server:\n  listen:\n  static:\napplications:\n  idle_timeout:\n', { env: {} })
  t.equal(config.server.listen.port, 3000)
  t.equal(config.applications.idleTimeoutMs, 600_000)
})

test('tenant, standalone and idle defaults; paths resolve against the config folder', async (t) => {
  const config = parseConfig([
    'server:',
    '  listen: "127.0.0.1:8080"',
    '  static: { public_dir: assets }',
    '  maintenance_page: errors/503.html',
    '  idle: {}',
    'applications:',
    '  idle_timeout: 0',
    '  tenants:',
    '    - { name: a, path: /a/ }',
    '    - { name: b, path: /, working_dir: sub, start: eager, command: bin/dev, args: [] }',
    '  standalone_servers:',
    '    - { name: cable, match_path: /cable, command: bundle, port: 4001 }'
  ].join('\n'), { dir: '/srv/app', env: {} })
  t.same(config.server.listen, { host: '127.0.0.1', port: 8080 })
  t.equal(config.server.publicDir, '/srv/app/assets')
  t.equal(config.server.maintenancePage, '/srv/app/assets/errors/503.html')
  t.same(config.server.idle, { action: 'suspend', timeoutMs: 1_200_000, apiSocket: '/.fly/api' })
  t.equal(config.applications.idleTimeoutMs, 0, 'idle_timeout 0 means never')
  t.same(config.applications.tenants[0], {
    name: 'a', path: '/a', workingDir: '/srv/app', var: {}, start: 'lazy', env: {}, command: null, args: null, hooks: { start: [], stop: [] }, publicDir: null, botDetection: null, healthCheck: null, startupTimeoutMs: null, trackWebSockets: null, memoryLimit: null, user: null, group: null
  }, 'trailing slash dropped, lazy, no overrides')
  t.same(config.applications.tenants[1], {
    name: 'b', path: '/', workingDir: '/srv/app/sub', var: {}, start: 'eager', env: {}, command: 'bin/dev', args: [], hooks: { start: [], stop: [] }, publicDir: null, botDetection: null, healthCheck: null, startupTimeoutMs: null, trackWebSockets: null, memoryLimit: null, user: null, group: null
  })
  t.same(config.applications.standaloneServers[0], {
    name: 'cable', matchPath: '/cable', command: 'bundle', args: [], workingDir: '/srv/app', port: 4001, env: {}
  })
})

test('values are normalised: samesite case, methods, regions, secrets, peers, listen forms', async (t) => {
  const config = parseConfig([
    'server: { listen: ":9000" }',
    'routes:',
    '  rewrites: [{ pattern: "^/api/(.*)", rewrite: "/$1" }]',
    '  fly:',
    '    replay:',
    '      - { path: "^/eu/", region: "ams, fra", methods: [get, Post] }',
    '      - { path: "^/w/", app: worker-app, status: 409 }',
    '      - { path: "^/m/", machine: 3d8d9e1c2a4b58 }',
    '      - { path: "^/r/", region: [ord, "sjc,any"] }',
    '    sticky_sessions:',
    '      cookie_samesite: nONe',
    '      cookie_secure: true',
    '      secret: [new-key, old-key]',
    '      peers: { m1: "http://127.0.0.1:4101/", m2: "https://m2.example:8443" }'
  ].join('\n'), { env: {} })
  t.same(config.server.listen, { host: '::', port: 9000 })
  t.ok(config.routes.rewrites[0].pattern.test('/api/x'))
  const [eu, worker, machine, regions] = config.routes.fly.replay
  t.same(eu.target, { kind: 'region', regions: ['ams', 'fra'] })
  t.same(eu.methods, ['GET', 'POST'])
  t.equal(eu.status, 307)
  t.same(worker.target, { kind: 'app', app: 'worker-app' })
  t.equal(worker.status, 409)
  t.equal(worker.methods, null)
  t.same(machine.target, { kind: 'machine', machine: '3d8d9e1c2a4b58' })
  t.same(regions.target, { kind: 'region', regions: ['ord', 'sjc', 'any'] })
  const sticky = config.routes.fly.stickySessions
  t.equal(sticky.cookieSameSite, 'None')
  t.same(sticky.secrets, ['new-key', 'old-key'])
  t.same(sticky.peers, { m1: 'http://127.0.0.1:4101', m2: 'https://m2.example:8443' })
})

test('numbers and booleans in env, var and args become strings; elsewhere a string stays required', async (t) => {
  const config = parseConfig([
    'applications:',
    '  env: { WEB_CONCURRENCY: 2, RAILS_LOG_TO_STDOUT: true }',
    '  tenants:',
    '    - { name: a, path: /a, var: { shard: 3 }, args: [-p, 4001] }',
    '  standalone_servers:',
    '    - { name: s, match_path: /s, command: x, args: [-p, 4002], port: 4002, env: { N: 1.5 } }'
  ].join('\n'), { env: {} })
  t.same(config.applications.env, { WEB_CONCURRENCY: '2', RAILS_LOG_TO_STDOUT: 'true' })
  t.same(config.applications.tenants[0].var, { shard: '3' })
  t.same(config.applications.tenants[0].args, ['-p', '4001'])
  t.same(config.applications.standaloneServers[0].args, ['-p', '4002'])
  t.same(config.applications.standaloneServers[0].env, { N: '1.5' })
  t.throws(() => parseConfig('applications:\n  command: 5\n', { env: {} }), /applications\.command: must be a string/)
})

test('YAML anchors, merge keys and top-level x- extension keys work', async (t) => {
  const config = parseConfig([
    'x-tenant: &tenant',
    '  working_dir: /app',
    '  start: eager',
    '  env: { DB: "db/${tenant_id}.sqlite3" }',
    'applications:',
    '  tenants:',
    '    - { <<: *tenant, name: a, path: /a, var: { tenant_id: ta } }',
    '    - { <<: *tenant, name: b, path: /b, var: { tenant_id: tb }, start: lazy }'
  ].join('\n'), { env: {} })
  t.same(config.applications.tenants.map((tenant) => [tenant.name, tenant.workingDir, tenant.start, tenant.env.DB]), [
    ['a', '/app', 'eager', 'db/${tenant_id}.sqlite3'],
    ['b', '/app', 'lazy', 'db/${tenant_id}.sqlite3']
  ])
})

test('loadConfig reads a file and records its absolute path and folder', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nav-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'navigator.yml')
  await writeFile(file, 'applications:\n  tenants:\n    - { name: a, path: /a, working_dir: app }\n')
  const config = await loadConfig(file, { env: {} })
  t.equal(config.file, file)
  t.equal(config.dir, dir)
  t.equal(config.applications.tenants[0].workingDir, join(dir, 'app'))
  t.equal(config.server.publicDir, join(dir, 'public'))
})

test('the example using every section of the format loads', async (t) => {
  const config = await loadConfig(join(fixtures, 'full-example.yml'), { env: { STICKY_SECRET: 'shh' } })
  t.same(config.routes.fly.stickySessions.secrets, ['shh'])
  t.equal(config.applications.tenants[0].env.DATABASE_URL, 'sqlite3:db/${tenant_id}.sqlite3')
  t.same(config.routes.fly.replay[0].target, { kind: 'region', regions: ['ord'] })
  t.equal(config.applications.standaloneServers[0].port, 4001)
  t.equal(config.server.idle?.timeoutMs, 1_200_000)
})

// The sticky-session examples of the Go Navigator's documentation (partial snippets completed where needed).
const goNavigatorExamples: Record<string, string> = {
  basic: `
routes:
  fly:
    sticky_sessions:
      enabled: true
      cookie_name: "_navigator_machine"
      cookie_max_age: "2h"
      cookie_secure: true
      cookie_httponly: true
`,
  'path-specific': `
routes:
  fly:
    sticky_sessions:
      enabled: true
      cookie_name: "_navigator_machine"
      cookie_max_age: "2h"
      paths:
        - "/app/*"
        - "/dashboard/*"
        - "/cable"  # Action Cable endpoint
`,
  complete: `
server:
  listen: 3000
  static:
    public_dir: public

routes:
  fly:
    sticky_sessions:
      enabled: true
      cookie_name: "_navigator_session"
      cookie_max_age: "4h"
      cookie_secure: true
      cookie_httponly: true
      cookie_samesite: "Lax"
      paths:
        - "/app/*"
        - "/admin/*"
        - "/cable"

applications:
  tenants:
    - name: myapp
      path: /
      working_dir: /app
`,
  'fly-replay compatibility': `
routes:
  rewrites:
    - pattern: "^/api/(.*)"
      rewrite: "/$1"

  fly:
    replay:
      - path: "^/api/"
        region: ord  # Prefer Chicago
        status: 307

    sticky_sessions:
      enabled: true
      paths:
        - "/app/*"  # Sticky for app, not API
`,
  'machine suspension': `
server:
  idle:
    action: suspend
    timeout: 20m

routes:
  fly:
    sticky_sessions:
      enabled: true
`,
  websocket: `
server:
  listen: 3000
  static:
    public_dir: public

routes:
  fly:
    sticky_sessions:
      enabled: true
      cookie_name: "_cable_machine"
      cookie_max_age: "24h"
      paths:
        - "/cable"  # Only for WebSocket endpoint

applications:
  tenants:
    - name: web-app
      path: /
      working_dir: /app

  standalone_servers:
    - name: action-cable
      match_path: /cable
      command: bundle
      args: [exec, puma, -p, "4001", cable/config.ru]
      working_dir: /app
      port: 4001
`,
  'multi-tenant': `
routes:
  fly:
    sticky_sessions:
      enabled: true
      cookie_name: "_tenant_machine"
      cookie_max_age: "4h"

applications:
  tenants:
    - name: tenant-a
      path: /tenant-a
      working_dir: /app
      var:
        tenant_id: tenant_a

    - name: tenant-b
      path: /tenant-b
      working_dir: /app
      var:
        tenant_id: tenant_b
`,
  'route_to_available fallback': `
routes:
  fly:
    sticky_sessions:
      enabled: true
      fallback_mode: "route_to_available"
`
}

test('every sticky-session example of the Go Navigator documentation loads', async (t) => {
  for (const [name, yaml] of Object.entries(goNavigatorExamples)) {
    const config = parseConfig(yaml, { file: `${name}.yml`, env: {} })
    t.equal(config.routes.fly.stickySessions.enabled, true, name)
  }
  const websocket = parseConfig(goNavigatorExamples.websocket, { env: {} })
  t.same(websocket.routes.fly.stickySessions.paths, ['/cable'])
  t.equal(websocket.routes.fly.stickySessions.cookieName, '_cable_machine')
  t.equal(websocket.applications.standaloneServers[0].matchPath, '/cable')
  const multi = parseConfig(goNavigatorExamples['multi-tenant'], { env: {} })
  t.equal(multi.routes.fly.stickySessions.cookieMaxAgeMs, 4 * 3_600_000)
  t.same(multi.applications.tenants.map((tenant) => tenant.var.tenant_id), ['tenant_a', 'tenant_b'])
  t.equal(parseConfig(goNavigatorExamples['route_to_available fallback'], { env: {} }).routes.fly.stickySessions.fallbackMode, 'route_to_available')
})
