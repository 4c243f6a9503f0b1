import { test } from 'tap'
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { chmodSync } from 'node:fs'
import type { IncomingHttpHeaders } from 'node:http'
import { join } from 'node:path'
import pino from 'pino'
import WebSocket from 'ws'
import { parseConfig } from '@navigator/config'
import { buildServer } from '../src/server.js'
import type { NavigatorServer } from '../src/server.js'
import { CABLE_APP, freePort, http, TENANT_APP, tempDir, tenantStartPort } from './helpers.js'
import type { Answer, LogLine } from './helpers.js'

// The request path is one list of steps, run by the raw path (Node's request and response) and by Fastify. This
// walks the list of a configuration that uses every step: for each step, requests that it answers (or changes),
// asked of a Navigator on the raw path and of one whose every request goes through Fastify, at info and at debug
// level. Both must give the same status, headers and body, send the upstream the same request, and (at debug)
// write the same log lines. A step added to the list without a case here fails the first assertion.

interface Case {
  method?: string
  path: string
  headers?: Record<string, string>
  body?: string
}

const COOKIE = '_navigator_machine'
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`

const CASES: Record<string, Case[]> = {
  'normalise-path': [{ path: '/old/../app/page?x=1', headers: { cookie: `${COOKIE}=m1` } }, { path: '/app/..%2fsecret' }],
  metrics: [{ path: '/metrics?x=1' }, { path: '/metrics', headers: { 'x-forwarded-for': '10.0.0.1' } }, { method: 'POST', path: '/metrics', body: 'x' }],
  status: [
    { path: '/navigator/status?x=1' },
    { path: '/navigator/status.json' },
    { path: '/navigator/status', headers: { 'fly-client-ip': '203.0.113.9' } },
    { method: 'POST', path: '/navigator/status.json', body: 'x' }
  ],
  'health-check': [{ path: '/up' }, { path: '/up?probe=1' }],
  'cable-broadcast': [
    { method: 'POST', path: '/_broadcast', headers: { 'content-type': 'application/json' }, body: '{"stream":"nobody","data":"x"}' },
    { path: '/_broadcast' },
    { method: 'POST', path: '/_broadcast', headers: { 'content-type': 'application/json' }, body: '{"data":"x"}' }
  ],
  hostname: [{ path: '/app/page', headers: { host: 'other.test' } }, { path: '/nowhere', headers: { host: 'other.test:8080' } }],
  rewrites: [{ path: '/old/page?x=1' }, { path: '/moved/page?x=1' }, { method: 'POST', path: '/gone/a%0d%0aSet-Cookie:x=1' }],
  'bot-detection': [{ path: '/app/page', headers: { 'user-agent': GOOGLEBOT } }, { path: '/file.txt', headers: { 'user-agent': GOOGLEBOT } }],
  'static-files': [{ path: '/file.txt' }, { method: 'HEAD', path: '/file.txt' }],
  auth: [
    { path: '/private/page' },
    { path: '/private/page', headers: { authorization: basic('ann:wrong') } },
    { path: '/private/page', headers: { authorization: basic('ann:secret') } }
  ],
  'tenant-static-files': [{ path: '/own/own.txt' }, { path: '/own/own.txt', headers: { authorization: basic('ann:secret') } }],
  cgi: [{ method: 'POST', path: '/script?x=1', headers: { 'content-type': 'text/plain' }, body: 'posted' }, { path: '/script' }],
  'replay-rules': [{ path: '/api/things' }, { method: 'POST', path: '/api/things', headers: { 'fly-replay-failed': 'reason=timeout' }, body: 'x' }],
  'sticky-sessions': [
    { path: '/app/page', headers: { cookie: `${COOKIE}=m2` } },
    { method: 'POST', path: '/app/page', headers: { cookie: `${COOKIE}=m2`, 'content-type': 'text/plain' }, body: 'small' },
    { path: '/app/page', headers: { cookie: `${COOKIE}=m2`, 'fly-replay-failed': 'reason=timeout' } },
    { path: '/app/page', headers: { cookie: `${COOKIE}=not%20a%20machine` } }
  ],
  cable: [{ path: '/hub' }],
  'reverse-proxies': [{ path: '/ext/page?x=1' }, { method: 'OPTIONS', path: '/ext/page' }],
  'standalone-servers': [{ path: '/cable' }],
  tenants: [
    { path: '/app/page?x=1', headers: { cookie: `${COOKIE}=m1` } },
    { method: 'POST', path: '/app/echo', headers: { 'content-type': 'application/octet-stream' }, body: 'hello body' }
  ],
  'not-found': [{ path: '/nowhere' }, { method: 'DELETE', path: '/nowhere' }]
}

interface Ports { listen: number, startPort: number, cable: number, peer: number }

function configText (ports: Ports): string {
  return [
    'server:',
    `  listen: "127.0.0.1:${ports.listen}"`,
    '  health_check: /up',
    '  shutdown_timeout: 1s',
    '  metrics:',
    '    path: /metrics',
    '  status: {}',
    '  hostname: 127.0.0.1',
    '  bot_detection:',
    '    enabled: true',
    '    action: static-only',
    '  cgi_scripts:',
    '    - path: /script',
    '      script: script.sh',
    '      method: POST',
    'auth:',
    '  enabled: true',
    '  realm: Steps',
    '  htpasswd: htpasswd',
    '  public_paths: ["/app/*", "/old/*", "/api/*", "/cable", "/ext/*", "/nowhere", "/script", "/hub"]',
    'routes:',
    '  redirects:',
    '    - from: "^/moved/(.*)"',
    '      to: "/app/$1"',
    '      status: 301',
    '  rewrites:',
    '    - pattern: "^/old/(.*)"',
    '      rewrite: "/app/$1"',
    '    - pattern: "^/gone/(.*)"',
    '      rewrite: "/app/$1"',
    '      redirect: true',
    '      status: 308',
    '  reverse_proxies:',
    '    - prefix: /ext/',
    `      target: "http://127.0.0.1:${ports.startPort}/app"`,
    '      strip_path: true',
    '      headers:',
    '        X-Real-IP: $remote_addr',
    '      response_headers:',
    '        X-Proxied: "yes"',
    '  fly:',
    '    replay:',
    '      - path: "^/api/"',
    '        region: iad',
    '    sticky_sessions:',
    '      enabled: true',
    '      paths: ["/app/*", "/cable", "/hub"]',
    '      debug_header: true',
    '      peers:',
    '        m1: "http://127.0.0.1:1"',
    `        m2: "http://127.0.0.1:${ports.peer}"`,
    'applications:',
    '  command: node',
    `  args: [${JSON.stringify(TENANT_APP)}]`,
    `  start_port: ${ports.startPort}`,
    '  tenants:',
    '    - name: app',
    '      path: /app',
    '      start: eager',
    '    - name: own',
    '      path: /own',
    '      public_dir: own-public',
    '  standalone_servers:',
    '    - name: cable',
    '      match_path: /cable',
    '      command: node',
    `      args: [${JSON.stringify(CABLE_APP)}, "${ports.cable}"]`,
    `      port: ${ports.cable}`,
    'cable:',
    '  enabled: true',
    '  path: /hub',
    ''
  ].join('\n')
}

/** What must be the same on both paths: the answer without its date and, for the tenant's JSON, what the tenant saw. */
function comparable (answer: Answer): { status: number, headers: IncomingHttpHeaders, body: unknown } {
  const headers = { ...answer.headers }
  delete headers.date
  let body: unknown = answer.text
  if (answer.headers['content-type']?.startsWith('text/plain; version=0.0.4') === true) {
    // The metrics: their values differ between two processes, the metrics they name do not.
    body = answer.text.split('\n').filter((line) => line.startsWith('# TYPE '))
    delete headers['content-length']
  }
  if (answer.headers['content-type'] === 'text/html; charset=utf-8' || answer.headers['content-type'] === 'application/json; charset=utf-8') {
    // The status page and its JSON: pids, ports of tenants, times and uptimes differ between two processes.
    body = answer.text.replace(/\d+/g, '#')
    delete headers['content-length']
  }
  if (answer.headers['content-type'] === 'application/json' && answer.status === 200) {
    // The tenant's own answer: its pid differs from one Navigator to the other, and so does the length.
    const seen = JSON.parse(answer.text) as { url: string, headers: Record<string, string> }
    const { 'x-request-id': requestId, ...rest } = seen.headers
    body = { url: seen.url, headers: rest, requestId: typeof requestId }
    delete headers['content-length']
  }
  return { status: answer.status, headers, body }
}

/** A log line without what differs between any two runs. */
function comparableLine (line: LogLine): LogLine {
  const { time, pid, hostname, ms, ...rest } = line
  return rest
}

interface Run {
  steps: string[]
  answers: Record<string, unknown[]>
  lines: Record<string, LogLine[][]>
  webSocket: { headers: Record<string, unknown>, echo: string }
  hub: { headers: Record<string, unknown>, messages: string[] }
}

async function start (t: Parameters<Parameters<typeof test>[1]>[0], site: Site, level: string, rawPath: boolean, lines: LogLine[], written: EventEmitter): Promise<NavigatorServer> {
  const { ports, dir } = site
  const logger = pino({ level }, {
    write (text: string) {
      const line = JSON.parse(text) as LogLine
      lines.push(line)
      written.emit('line', line)
    }
  })
  const navigator = await buildServer(parseConfig(configText(ports), { dir }), {
    env: { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'steps', FLY_REGION: 'ord' },
    logger,
    rawPath
  })
  t.teardown(async () => { await navigator.close() })
  await navigator.listen()
  await navigator.supervisor.ensureTenant('app')
  await standaloneRunning(navigator, 'cable')
  return navigator
}

async function standaloneRunning (navigator: NavigatorServer, name: string): Promise<void> {
  const supervisor = navigator.supervisor
  if (supervisor.standaloneStatus(name).state === 'running') return
  await new Promise<void>((resolve) => {
    const onReady = (event: { name: string }): void => {
      if (event.name !== name) return
      supervisor.off('ready', onReady)
      resolve()
    }
    supervisor.on('ready', onReady)
  })
}

/** Resolves once a line written since index `from` satisfies `predicate`. */
async function lineWritten (lines: LogLine[], written: EventEmitter, from: number, predicate: (line: LogLine) => boolean): Promise<void> {
  if (lines.slice(from).some(predicate)) return
  await new Promise<void>((resolve) => {
    const onLine = (line: LogLine): void => {
      if (!predicate(line)) return
      written.off('line', onLine)
      resolve()
    }
    written.on('line', onLine)
  })
}

async function webSocketAnswer (address: string): Promise<Run['webSocket']> {
  const ws = new WebSocket(`${address.replace('http', 'ws')}/cable`)
  const opened = new Promise((resolve) => ws.once('open', resolve))
  const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    ws.once('upgrade', (res) => {
      const { date, 'sec-websocket-accept': accept, ...rest } = res.headers
      resolve(rest)
    })
    ws.once('error', reject)
  })
  await opened
  ws.send('ping')
  const echo = await new Promise<string>((resolve) => ws.once('message', (data) => { resolve(String(data)) }))
  ws.close()
  await new Promise((resolve) => ws.once('close', resolve))
  return { headers, echo }
}

/** A WebSocket of the TurboCable hub: its 101's headers, its confirmation and a broadcast it got. */
async function hubAnswer (address: string): Promise<Run['hub']> {
  const ws = new WebSocket(`${address.replace('http', 'ws')}/hub`)
  const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    ws.once('upgrade', (res) => {
      const { date, 'sec-websocket-accept': accept, ...rest } = res.headers
      resolve(rest)
    })
    ws.once('error', reject)
  })
  const messages: string[] = []
  const received = async (count: number): Promise<void> => await new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData): void => {
      messages.push(String(data))
      if (messages.length < count) return
      ws.off('message', onMessage)
      resolve()
    }
    ws.on('message', onMessage)
  })
  const confirmed = received(1)
  ws.send(JSON.stringify({ type: 'subscribe', stream: 'steps' }))
  await confirmed
  const broadcasted = received(2)
  await http(address, '/_broadcast', { method: 'POST', body: '{"stream":"steps","data":{"n":1}}' })
  await broadcasted
  ws.close()
  await new Promise((resolve) => ws.once('close', resolve))
  return { headers, messages }
}

async function walk (t: Parameters<Parameters<typeof test>[1]>[0], site: Site, level: string, rawPath: boolean): Promise<Run> {
  const ports = site.ports
  const lines: LogLine[] = []
  const written = new EventEmitter()
  const navigator = await start(t, site, level, rawPath, lines, written)
  const address = `http://127.0.0.1:${ports.listen}`
  const run: Run = { steps: navigator.pipeline.steps.map((step) => step.name), answers: {}, lines: {}, webSocket: { headers: {}, echo: '' }, hub: { headers: {}, messages: [] } }
  for (const [step, cases] of Object.entries(CASES)) {
    run.answers[step] = []
    run.lines[step] = []
    for (const each of cases) {
      const from = lines.length
      const answer = await http(address, each.path, { method: each.method, headers: each.headers, body: each.body })
      run.answers[step].push(comparable(answer))
      // At debug, the line that closes every request is written once its response has closed.
      if (level === 'debug') await lineWritten(lines, written, from, (line) => line.msg === 'request completed')
      run.lines[step].push(lines.slice(from).map(comparableLine))
    }
  }
  run.webSocket = await webSocketAnswer(address)
  run.hub = await hubAnswer(address)
  // The other path's Navigator listens on the same ports next (the answers name them).
  await navigator.close()
  return run
}

/** The same ports and files for both paths: the answers name the ports, and a file's ETag is made of its mtime. */
interface Site { ports: Ports, dir: string }

async function site (): Promise<Site> {
  const dir = tempDir({
    'public/file.txt': 'a static file\n',
    'own-public/own.txt': 'a file of the tenant own\n',
    'script.sh': '#!/bin/sh\nprintf \'Content-Type: text/plain\\n\\n%s %s \' "$REQUEST_METHOD" "$QUERY_STRING"\ncat\n',
    htpasswd: `ann:{SHA}${createHash('sha1').update('secret').digest('base64')}\n`
  })
  chmodSync(join(dir, 'script.sh'), 0o755)
  return {
    ports: { listen: await freePort(), startPort: tenantStartPort(), cable: await freePort(), peer: await freePort() },
    dir
  }
}

for (const level of ['info', 'debug']) {
  test(`at ${level} level, every step of the list answers the same on the raw path and through Fastify`, async (t) => {
    const both = await site()
    const raw = await walk(t, both, level, true)
    const fastify = await walk(t, both, level, false)

    t.same(raw.steps, Object.keys(CASES), 'the list, in order, is the one this test has a case for each step of')
    for (const step of raw.steps) {
      t.same(raw.answers[step], fastify.answers[step], `${step}: status, every header and the body`)
      t.same(raw.lines[step], fastify.lines[step], `${step}: the same log lines`)
    }
    t.same(raw.webSocket, fastify.webSocket, 'a WebSocket to a standalone server: the same 101 and echo')
    t.same(raw.hub, fastify.hub, 'a WebSocket of the TurboCable hub: the same 101, confirmation and broadcast')

    // The answers are the steps' own, not merely equal.
    const [resolved, hidden] = raw.answers['normalise-path'] as Array<{ status: number, body: { url: string } }>
    t.equal(resolved.body.url, '/app/page?x=1', 'the tenant is asked for the path with its dot segments resolved')
    t.equal(hidden.status, 400, 'a dot segment behind an encoded slash: 400')
    const [scrape, proxied, posted] = raw.answers.metrics as Array<{ status: number, body: unknown }>
    t.equal(scrape.status, 200, 'the metrics path, asked straight from this computer: the metrics')
    t.ok((scrape.body as string[]).includes('# TYPE navigator_requests_total counter'), 'with the requests by step')
    t.match([proxied, posted], [{ status: 404, body: 'Not Found\n' }, { status: 404, body: 'Not Found\n' }], 'through a proxy, or not a GET: 404')
    const [statusPage, statusJson, proxiedStatus, postedStatus] = raw.answers.status as Array<{ status: number, body: string, headers: IncomingHttpHeaders }>
    t.match(statusPage, { status: 200, body: /<tr data-process="tenant:app">/, headers: { 'content-security-policy': /^default-src 'none'/ } }, 'the status page, asked straight')
    t.match(statusJson, { status: 200, body: /"processes":\[\{"kind":"tenant","name":"app"/ }, 'its JSON')
    // With auth on (and the page not public), a proxied request is asked for auth's password rather than refused.
    t.match([proxiedStatus, postedStatus], [{ status: 401, headers: { 'www-authenticate': 'Basic realm="Steps"' } }, { status: 404, body: 'Not Found\n' }], 'through a proxy without the password: 401; not a GET: 404')
    const [health] = raw.answers['health-check'] as Array<{ status: number, body: string }>
    t.match(health, { status: 200, body: 'OK\n' })
    const [rewritten] = raw.answers.rewrites as Array<{ body: { url: string } }>
    t.equal(rewritten.body.url, '/app/page?x=1', 'the tenant is asked for the forwarded path')
    const [file, head] = raw.answers['static-files'] as Array<{ status: number, body: string, headers: IncomingHttpHeaders }>
    t.match(file, { status: 200, body: 'a static file\n' })
    t.ok(file.headers.etag, 'sent by @fastify/static, with an ETag')
    t.match(head, { status: 200, body: '' })
    t.match(raw.answers.hostname, [{ status: 421, body: 'Misdirected Request\n' }, { status: 421 }], 'another host: 421, before the 404 of a path nothing serves')
    t.match(raw.answers['bot-detection'], [{ status: 403, body: 'Forbidden\n' }, { status: 200, body: 'a static file\n' }], 'a bot with static-only: 403 for a page, the static file served')
    const [missing, wrong, right] = raw.answers.auth as Array<{ status: number, body: string, headers: IncomingHttpHeaders }>
    t.match([missing, wrong], [{ status: 401, headers: { 'www-authenticate': 'Basic realm="Steps"' } }, { status: 401 }], 'no password, or a wrong one: 401')
    t.match(right, { status: 404, body: 'Not Found\n' }, 'the right one: on to the next steps (nothing serves /private)')
    t.match(raw.answers.cgi, [{ status: 200, body: 'POST x=1 posted' }, { status: 405, headers: { allow: 'POST' } }], 'a CGI script: its output; another method 405')
    const [replayed, failedReplay] = raw.answers['replay-rules'] as Array<{ status: number, headers: IncomingHttpHeaders }>
    t.match(replayed, { status: 307, headers: { 'fly-replay': 'region=iad;state=nav-rule' } })
    t.equal(failedReplay.status, 503, 'a replay that failed gets the maintenance page')
    const [stickyReplay, tooLarge, unavailable, rejected] = raw.answers['sticky-sessions'] as Array<{ status: number, headers: IncomingHttpHeaders }>
    t.match(stickyReplay, { status: 307, headers: { 'fly-replay': /^instance=m2;/ } })
    t.equal(stickyReplay.headers['set-cookie'], undefined, 'a replay sets no cookie')
    t.equal(tooLarge.status, 307, 'a small body is replayed too')
    t.equal(unavailable.status, 503, 'an unavailable Machine: the maintenance page')
    t.same([stickyReplay, tooLarge, unavailable, rejected].map((answer) => answer.headers['x-navigator-sticky']),
      ['replayed; machine=m2', 'replayed; machine=m2', 'fallback; machine=m2', 'rejected=malformed; machine=m1'], 'the debug header names each decision')
    t.match(rejected, { status: 200, headers: { 'set-cookie': [new RegExp(`^${COOKIE}=m1;`), 'a=1; Path=/', 'b=2; Path=/'] } })
    const [external, preflight] = raw.answers['reverse-proxies'] as Array<{ status: number, headers: IncomingHttpHeaders, body: { url: string, headers: Record<string, string> } }>
    t.match(external, { status: 200, headers: { 'x-proxied': 'yes' }, body: { url: '/app/page?x=1', headers: { 'x-real-ip': '127.0.0.1' } } }, 'a reverse proxy: the target asked for its path, with the headers')
    t.match(preflight, { status: 200, headers: { 'x-proxied': 'yes' }, body: '' }, 'a preflight answered with the response headers')
    const [cable] = raw.answers['standalone-servers'] as Array<{ status: number, body: string }>
    t.match(cable, { status: 200, body: 'cable http\n' })
    const [broadcastSent, notAPost, noStream] = raw.answers['cable-broadcast'] as Array<{ status: number, body: string }>
    t.match([broadcastSent, notAPost, noStream], [{ status: 200, body: '' }, { status: 405, body: 'Method not allowed\n' }, { status: 400, body: 'Stream required\n' }],
      'the broadcast path, asked from this computer without a password: the Go answers')
    const [plainHub] = raw.answers.cable as Array<{ status: number, body: string, headers: IncomingHttpHeaders }>
    t.match(plainHub, { status: 400, body: 'Bad Request\n', headers: { 'set-cookie': [new RegExp(`^${COOKIE}=m1;`)] } }, 'a plain GET of the hub path: 400, after the sticky step pinned this Machine')
    t.same(raw.hub.messages, ['{"type":"subscribed","stream":"steps"}', '{"type":"message","stream":"steps","data":{"n":1}}'], 'the hub confirms and fans out')
    t.match(raw.hub.headers['set-cookie'], [new RegExp(`^${COOKIE}=m1;`)], 'the hub\'s 101 carries the sticky cookie')
    const [page, echo] = raw.answers.tenants as Array<{ status: number, body: unknown }>
    t.match(page, { status: 200, body: { url: '/app/page?x=1', headers: { 'x-forwarded-for': '127.0.0.1' }, requestId: 'string' } })
    t.match(echo, { status: 200, body: 'hello body' })
    t.match(raw.answers['not-found'], [{ status: 404, body: 'Not Found\n' }, { status: 404 }])
    t.equal(raw.webSocket.echo, 'ping')
    t.match(raw.webSocket.headers['set-cookie'], [new RegExp(`^${COOKIE}=m1;`)], 'the 101 carries the sticky cookie')
    if (level === 'debug') {
      t.ok(raw.lines['sticky-sessions'][0].some((line) => line.msg === 'Sticky session cookie found' && line.machine === 'm2'))
      t.ok(raw.lines.tenants[0].some((line) => line.msg === 'request completed' && line.url === '/app/page?x=1'))
    }
  })
}

// maintenance-mode is in the list only when maintenance.enabled, which would answer every case above that reaches an
// app; it is walked on both paths with a configuration of its own.
const MAINTENANCE_CASES: Case[] = [
  { path: '/app/page' },
  { method: 'POST', path: '/app/echo', headers: { 'content-type': 'text/plain' }, body: 'x' },
  { path: '/file.txt' },
  { path: '/up' },
  { path: '/api/things' }
]

function maintenanceConfigText (ports: Ports): string {
  return [
    'server:',
    `  listen: "127.0.0.1:${ports.listen}"`,
    '  health_check: /up',
    '  shutdown_timeout: 1s',
    'maintenance:',
    '  enabled: true',
    'routes:',
    '  fly:',
    '    replay:',
    '      - path: "^/api/"',
    '        region: iad',
    'applications:',
    '  command: node',
    `  args: [${JSON.stringify(TENANT_APP)}]`,
    `  start_port: ${ports.startPort}`,
    '  tenants:',
    '    - name: app',
    '      path: /app',
    ''
  ].join('\n')
}

test('maintenance mode answers the same on the raw path and through Fastify', async (t) => {
  const both = await site()
  const answers: Record<string, unknown[]> = {}
  const steps: Record<string, string[]> = {}
  for (const [name, rawPath] of [['raw', true], ['fastify', false]] as const) {
    const navigator = await buildServer(parseConfig(maintenanceConfigText(both.ports), { dir: both.dir }), {
      env: { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'steps', FLY_REGION: 'ord' },
      logger: pino({ level: 'silent' }),
      rawPath
    })
    await navigator.listen()
    steps[name] = navigator.pipeline.steps.map((step) => step.name)
    answers[name] = []
    for (const each of MAINTENANCE_CASES) {
      const answer = await http(`http://127.0.0.1:${both.ports.listen}`, each.path, { method: each.method, headers: each.headers, body: each.body })
      answers[name].push(comparable(answer))
    }
    await navigator.close()
  }
  t.ok(steps.raw.includes('maintenance-mode'), 'the step is in the list')
  t.same(answers.raw, answers.fastify, 'status, every header and the body, case by case')
  t.match(answers.raw, [
    { status: 503, headers: { 'retry-after': '5' } },
    { status: 503 },
    { status: 200, body: 'a static file\n' },
    { status: 200, body: 'OK\n' },
    { status: 307, headers: { 'fly-replay': 'region=iad;state=nav-rule' } }
  ], 'an app gets the page; static files, the health check and replays keep working')
})
