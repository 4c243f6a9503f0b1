#!/usr/bin/env node
// Items 1, 2 and 7 of issue 18 against nginx and HAProxy: the same attacks on each proxy, each in front of the same
// small upstream on loopback, and what each does with them.
//
//   node bench/hostile-compare.mjs [--hold-limit 15] [--only navigator,nginx,haproxy,nginx-uri,haproxy-normalize]
//
// - item 1: 20 WebSocket handshakes answered with plain HTTP (the proxy's own 404 for /nowhere; the upstream's 404
//   for /app/nowhere, relayed), the client never closing: does the proxy end the connection, when, and when are its
//   descriptors back to where they were; and a DELETE carrying `Upgrade: websocket`: the status, and the method the
//   upstream sees;
// - item 2: 50 connections each send a malformed request, read the 400 and never close: the same questions;
// - item 7: paths with dot segments: the status, the upstream routed to and the path it received.
//
// A held socket never ends or closes from this side. After --hold-limit seconds (or once every socket is ended and
// the descriptors are back), the start of a request is written to each: a reset means the proxy had closed the
// connection for good; accepted bytes mean it still holds it (half-closed and reading, or kept alive).
//
// Item 7 also runs against nginx with a URI in proxy_pass (nginx-uri) and HAProxy with normalize-uri
// (haproxy-normalize), the configurations that make each send the path it resolved.
//
// Every contender routes /app/ and /other/ to an upstream of that name (a node http server answering with its name,
// the method and the path it received; it refuses every upgrade with a 404) and answers anything else with its own
// 404. The upstream is this script, run with --upstream. Prints markdown tables and writes
// bench/results/hostile-compare-<time>.json.
import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  ROOT, NAVIGATOR_BIN, PROXY_CORE, LOAD_CORE, freePort, waitForPort, spawnPinned, stopProcess, processTree,
  median, machineDescription
} from './lib.mjs'

const { values: flags } = parseArgs({
  options: {
    upstream: { type: 'boolean', default: false },
    'hold-limit': { type: 'string', default: '15' },
    only: { type: 'string' }
  }
})

if (flags.upstream) runUpstream()
else await compare()

/** The upstream: PORT, UPSTREAM_NAME and UPSTREAM_LOG (a file getting one JSON line per request) from the environment. */
function runUpstream () {
  const name = process.env.UPSTREAM_NAME
  const server = createServer((req, res) => {
    const seen = { upstream: name, method: req.method, url: req.url, upgrade: req.headers.upgrade ?? null }
    appendFileSync(process.env.UPSTREAM_LOG, JSON.stringify(seen) + '\n')
    req.resume()
    // Refused with plain HTTP, as an app without a WebSocket endpoint there would.
    res.writeHead(req.headers.upgrade === undefined ? 200 : 404, { 'content-type': 'application/json' })
    res.end(JSON.stringify(seen))
  })
  server.listen(Number(process.env.PORT), '127.0.0.1')
  process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
}

async function compare () {
  const HOLD_LIMIT_MS = Number(flags['hold-limit']) * 1000
  const work = mkdtempSync(join(tmpdir(), 'navigator-hostile-compare-'))
  const SELF = fileURLToPath(import.meta.url)
  const KEY = 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
  const upgrade = (method, path, extra = '') =>
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}${extra}\r\n`

  /** Held-socket cases: what each connection sends, how many. */
  const CASES = [
    { item: 1, name: 'upgrade of /nowhere (the proxy\'s own 404), held', count: 20, bytes: upgrade('GET', '/nowhere') },
    { item: 1, name: 'upgrade of /app/nowhere (the upstream\'s 404, relayed), held', count: 20, bytes: upgrade('GET', '/app/nowhere') },
    { item: 2, name: '`GET / HTTP/1.1` + `Bad Header` (no colon), 400 read, held', count: 50, bytes: 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n' },
    { item: 2, name: 'a NUL in the request line, 400 read, held', count: 50, bytes: 'GET /\0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' }
  ]
  const PATHS = ['/app/../secret.txt', '/app/%2e%2E/other/x', '/app/..%2fother/x', '/other/a/b/../../../app/y']

  /** Two upstreams, app and other, logging to one file. */
  async function startUpstreams (dir) {
    const log = join(dir, 'upstream.log')
    writeFileSync(log, '')
    const started = {}
    for (const name of ['app', 'other']) {
      const port = await freePort()
      const child = spawnPinned(LOAD_CORE, process.execPath, [SELF, '--upstream'], { env: { PORT: String(port), UPSTREAM_NAME: name, UPSTREAM_LOG: log } })
      await waitForPort(port)
      started[name] = { port, child }
    }
    return { log, ports: { app: started.app.port, other: started.other.port }, children: [started.app.child, started.other.child] }
  }

  // Navigator starts the two upstreams itself, as tenants; its timeouts are its own defaults.
  async function startNavigator (dir) {
    const port = await freePort()
    const log = join(dir, 'upstream.log')
    writeFileSync(log, '')
    const tenant = (name) => [
      `    - name: ${name}`, `      path: /${name}`, '      start: eager',
      `      env: { UPSTREAM_NAME: ${name}, UPSTREAM_LOG: ${JSON.stringify(log)} }`
    ]
    const config = join(dir, 'navigator.yml')
    writeFileSync(config, [
      'server:', `  listen: "127.0.0.1:${port}"`, '  shutdown_timeout: 1s',
      'applications:', '  command: taskset', `  args: ["-c", "${LOAD_CORE}", ${JSON.stringify(process.execPath)}, ${JSON.stringify(SELF)}, "--upstream"]`,
      `  start_port: ${await freePort()}`, '  idle_timeout: 0s', '  health_check: /up', '  tenants:',
      ...tenant('app'), ...tenant('other'), ''
    ].join('\n'))
    const child = spawnPinned(PROXY_CORE, process.execPath, [NAVIGATOR_BIN, config], { env: { LOG_LEVEL: 'warn' } })
    await waitForPort(port)
    for (const path of ['/app/warm-up', '/other/warm-up']) await untilOk(port, path)
    return { port, child, log, pids: () => [child.pid], children: [], config: readFileSync(config, 'utf8') }
  }

  /** nginx: master and one worker, as installed; `proxyUri` adds a URI to proxy_pass (the normalised path is sent). */
  async function startNginx (dir, { proxyUri = false } = {}) {
    const up = await startUpstreams(dir)
    const port = await freePort()
    const location = (name) => `    location /${name}/ {
      proxy_pass http://${name}${proxyUri ? `/${name}/` : ''};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      add_header X-Location /${name}/ always;
    }`
    const config = `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream app { server 127.0.0.1:${up.ports.app}; }
  upstream other { server 127.0.0.1:${up.ports.other}; }
  server {
    listen 127.0.0.1:${port};
${location('app')}
${location('other')}
    location / {
      add_header X-Location / always;
      return 404;
    }
  }
}
`
    writeFileSync(join(dir, 'nginx.conf'), config)
    const child = spawnPinned(PROXY_CORE, '/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')])
    await waitForPort(port)
    // The workers: the master only accepts nothing and holds its listening socket and logs.
    const workers = () => processTree(child.pid).filter((pid) => pid !== child.pid)
    return { port, child, log: up.log, pids: workers, children: up.children, config }
  }

  /** HAProxy, one thread, as bench/proxy.mjs runs it; `normalize` adds its (opt-in) path normalisation. */
  async function startHaproxy (dir, { normalize = false } = {}) {
    const up = await startUpstreams(dir)
    const port = await freePort()
    const config = `global
  nbthread 1
  maxconn 4000
${normalize ? '  expose-experimental-directives\n' : ''}defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:${port}
${normalize ? '  http-request normalize-uri percent-decode-unreserved\n  http-request normalize-uri path-strip-dot\n  http-request normalize-uri path-strip-dotdot full\n' : ''}  acl to_app path_beg /app/
  acl to_other path_beg /other/
  use_backend app if to_app
  use_backend other if to_other
  default_backend none
backend app
  server app 127.0.0.1:${up.ports.app}
backend other
  server other 127.0.0.1:${up.ports.other}
backend none
  http-request return status 404 content-type text/plain string "not found"
`
    writeFileSync(join(dir, 'haproxy.cfg'), config)
    const child = spawnPinned(PROXY_CORE, '/usr/sbin/haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'])
    await waitForPort(port)
    return { port, child, log: up.log, pids: () => [child.pid], children: up.children, config }
  }

  const CONTENDERS = [
    { name: 'navigator', label: 'Navigator', start: startNavigator, items: [1, 2, 7] },
    { name: 'nginx', label: 'nginx', start: startNginx, items: [1, 2, 7] },
    { name: 'haproxy', label: 'HAProxy', start: startHaproxy, items: [1, 2, 7] },
    { name: 'nginx-uri', label: 'nginx, `proxy_pass` with a URI', start: (dir) => startNginx(dir, { proxyUri: true }), items: [7] },
    { name: 'haproxy-normalize', label: 'HAProxy, `normalize-uri` percent-decode-unreserved, path-strip-dot, path-strip-dotdot full', start: (dir) => startHaproxy(dir, { normalize: true }), items: [7] }
  ].filter((c) => flags.only === undefined || flags.only.split(',').includes(c.name))

  async function untilOk (port, path) {
    for (let i = 0; i < 200; i++) {
      const answer = await get(port, path).catch(() => null)
      if (answer?.status === 200) return
      await sleep(100)
    }
    throw new Error(`${path} never answered 200 on ${port}`)
  }

  /** A request with the target exactly as given (node's http client does not normalise the path). */
  function get (port, path, { method = 'GET', headers = {} } = {}) {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
        let body = ''
        res.on('data', (chunk) => { body += chunk })
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
      })
      req.on('error', reject)
      req.setTimeout(5_000, () => req.destroy(new Error('no answer within 5 s')))
      req.end()
    })
  }

  function descriptors (pids) {
    let count = 0
    for (const pid of pids) { try { count += readdirSync(`/proc/${pid}/fd`).length } catch {} }
    return count
  }

  /** The proxy's descriptor count once it has not changed for 1 s (the previous case's sockets gone), within 10 s. */
  async function settledDescriptors (proxy) {
    let last = descriptors(proxy.pids())
    let steadySince = Date.now()
    const deadline = Date.now() + 10_000
    while (Date.now() - steadySince < 1_000 && Date.now() < deadline) {
      await sleep(100)
      const now = descriptors(proxy.pids())
      if (now !== last) { last = now; steadySince = Date.now() }
    }
    return last
  }

  /** Opens a connection, sends `bytes`, and never ends or closes it from this side. */
  function hold (port, bytes) {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    const opened = Date.now()
    const held = { socket, head: '', endedMs: null, closed: false, error: null, reset: false }
    socket.on('data', (chunk) => { if (held.head.length < 200) held.head += chunk.toString('latin1') })
    socket.on('end', () => { held.endedMs ??= Date.now() - opened })
    socket.on('error', (err) => { held.error = err.code })
    socket.on('close', () => { held.endedMs ??= Date.now() - opened; held.closed = true })
    socket.write(bytes, 'latin1')
    return held
  }

  /**
   * One held-socket case: the descriptors are read every 50 ms until every socket was ended by the proxy and the
   * count is back within 2 of where it was, or the hold limit; then the one-byte probe.
   */
  async function heldCase (proxy, kase) {
    const before = await settledDescriptors(proxy)
    const started = Date.now()
    const held = Array.from({ length: kase.count }, () => hold(proxy.port, kase.bytes))
    let peak = before
    let backMs = null
    while (Date.now() - started < HOLD_LIMIT_MS) {
      await sleep(50)
      const now = descriptors(proxy.pids())
      peak = Math.max(peak, now)
      const answered = held.every((h) => h.head.includes('\r\n\r\n') || h.closed)
      if (answered && now <= before + 2) backMs ??= Date.now() - started
      if (answered && now > before + 2) backMs = null
      if (backMs !== null && held.every((h) => h.endedMs !== null)) break
    }
    const atEnd = descriptors(proxy.pids())
    const waitedMs = Date.now() - started
    const ended = held.filter((h) => h.endedMs !== null)
    await probe(held)
    const statuses = {}
    for (const h of held) {
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(h.head)?.[1] ?? 'none'
      statuses[status] = (statuses[status] ?? 0) + 1
    }
    const result = {
      case: kase.name,
      item: kase.item,
      statuses,
      connections: kase.count,
      endedByProxy: ended.length,
      endMsMedian: ended.length > 0 ? median(ended.map((h) => h.endedMs)) : null,
      endMsMax: ended.length > 0 ? Math.max(...ended.map((h) => h.endedMs)) : null,
      resetOnProbe: held.filter((h) => h.reset).length,
      fds: { before, peak, atEnd, backMs },
      waitedMs
    }
    for (const h of held) h.socket.destroy()
    return result
  }

  /**
   * Writes "G", then "E": the start of a request, which a proxy still holding the connection (kept alive, or
   * half-closed and reading) takes and waits on. A closed one answers the first byte with a reset, and the second
   * write fails (the first cannot tell: once the proxy's FIN is read, Node no longer reads, so the reset arrives
   * unnoticed).
   */
  async function probe (held) {
    const open = held.filter((h) => !h.closed)
    for (const h of open) h.socket.write('G')
    await sleep(200)
    await Promise.all(open.map((h) => new Promise((resolve) => {
      h.socket.write('E', (err) => { h.reset = err != null || h.error !== null; resolve() })
    })))
    for (const h of held) if (h.closed && h.error !== null) h.reset = true
  }

  /** A DELETE carrying `Upgrade: websocket`: the answer, and what the upstream saw of it. */
  async function deleteUpgrade (proxy) {
    const held = hold(proxy.port, upgrade('DELETE', '/app/delete-upgrade', 'Content-Length: 0\r\n'))
    const started = Date.now()
    while (Date.now() - started < 5_000 && held.endedMs === null) await sleep(50)
    await sleep(200)
    held.socket.destroy()
    const seen = upstreamSaw(proxy, (line) => line.url.includes('delete-upgrade'))
    return {
      status: /^HTTP\/1\.[01] (\d{3})/.exec(held.head)?.[1] ?? 'none',
      upstreamSaw: seen.length === 0 ? 'nothing' : seen.map((line) => `${line.method} ${line.url}${line.upgrade ? ` (Upgrade: ${line.upgrade})` : ''}`).join('; '),
      connection: held.endedMs === null ? 'open after 5 s' : `ended after ${held.endedMs} ms`
    }
  }

  function upstreamSaw (proxy, predicate) {
    return readFileSync(proxy.log, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter(predicate)
  }

  async function dotSegments (proxy) {
    const rows = []
    for (const path of PATHS) {
      const logged = upstreamSaw(proxy, () => true).length
      const answer = await get(proxy.port, path).catch((err) => ({ status: err.message, headers: {}, body: '' }))
      await sleep(50)
      const seen = upstreamSaw(proxy, () => true).slice(logged).filter((line) => line.url !== '/up')
      rows.push({
        path,
        status: answer.status,
        upstream: seen.length === 0 ? '-' : seen.map((line) => line.upstream).join(', '),
        received: seen.length === 0 ? '-' : seen.map((line) => line.url).join(', '),
        location: answer.headers['x-location'] ?? null
      })
    }
    return rows
  }

  /** Starts a contender, runs its items' attacks, and stops it and its upstreams, whatever happened. */
  async function run (contender) {
    const dir = mkdtempSync(join(work, `${contender.name}-`))
    console.error(`${contender.label}...`)
    const proxy = await contender.start(dir)
    try {
      const result = { name: contender.name, label: contender.label, config: proxy.config, held: [], deleteUpgrade: null, paths: [] }
      for (const kase of CASES.filter((each) => contender.items.includes(each.item))) {
        result.held.push(await heldCase(proxy, kase))
        console.error(`  ${kase.name}: ${JSON.stringify(result.held.at(-1))}`)
      }
      if (contender.items.includes(1)) result.deleteUpgrade = await deleteUpgrade(proxy)
      if (contender.items.includes(7)) result.paths = await dotSegments(proxy)
      return result
    } finally {
      await stopProcess(proxy.child)
      for (const child of proxy.children) await stopProcess(child)
    }
  }

  function version (command, args) {
    try {
      const out = execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
      return out.split('\n')[0].trim()
    } catch (err) {
      return String(err.stderr ?? err.message).split('\n')[0].trim()
    }
  }
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
  const versions = {
    navigator: `Navigator at ${head} (${NAVIGATOR_BIN.slice(ROOT.length + 1)})`,
    nginx: execFileSync('sh', ['-c', '/usr/sbin/nginx -v 2>&1'], { encoding: 'utf8' }).trim(),
    haproxy: version('/usr/sbin/haproxy', ['-v'])
  }

  const results = []
  try {
    for (const contender of CONTENDERS) results.push(await run(contender))
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  report(results, versions, HOLD_LIMIT_MS)
}

function report (results, versions, holdLimitMs) {
  const limit = `${holdLimitMs / 1000} s`
  console.log(`\nHostile input, Navigator against nginx and HAProxy (issue 18, items 1, 2 and 7); ${machineDescription()}`)
  console.log(`Command: node bench/hostile-compare.mjs ${process.argv.slice(2).join(' ')}`.trim())
  console.log(`Versions: ${versions.navigator}; ${versions.nginx}; ${versions.haproxy}`)
  console.log(`\nHeld sockets (items 1 and 2): the client never ends or closes; hold limit ${limit}. "Back to idle": the proxy's ` +
    'descriptors (nginx: its worker) within 2 of the count before, every answer sent. "Reset on a write": a write at the ' +
    'end failed with a reset, so the proxy had closed the connection for good.')
  console.log('\n| case | proxy | answers | ended by the proxy | ms to the proxy\'s FIN, median / max | descriptors before / peak / at the end | back to idle after | reset on a write at the end |')
  console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |')
  for (const kase of results[0]?.held ?? []) {
    for (const r of results) {
      const h = r.held.find((each) => each.case === kase.case)
      if (h === undefined) continue
      const answers = Object.entries(h.statuses).map(([status, n]) => `${status} x ${n}`).join(', ')
      const ms = h.endMsMedian === null ? '-' : `${Math.round(h.endMsMedian)} / ${h.endMsMax}`
      const back = h.fds.backMs === null ? `not within ${limit}` : `${h.fds.backMs} ms`
      console.log(`| ${kase.case} | ${r.label} | ${answers} | ${h.endedByProxy} of ${h.connections} | ${ms} | ${h.fds.before} / ${h.fds.peak} / ${h.fds.atEnd} | ${back} | ${h.resetOnProbe} of ${h.connections} |`)
    }
  }
  console.log('\nA DELETE carrying `Upgrade: websocket` (item 1):\n\n| proxy | status | the upstream saw | connection |\n| --- | ---: | --- | --- |')
  for (const r of results) {
    if (r.deleteUpgrade !== null) console.log(`| ${r.label} | ${r.deleteUpgrade.status} | ${r.deleteUpgrade.upstreamSaw} | ${r.deleteUpgrade.connection} |`)
  }
  console.log('\nDot segments (item 7); the upstream is the one the request was routed to:\n')
  console.log('| path | proxy | status | routed to | the upstream received | nginx location |\n| --- | --- | ---: | --- | --- | --- |')
  for (const path of results[0]?.paths.map((p) => p.path) ?? []) {
    for (const r of results) {
      const p = r.paths.find((each) => each.path === path)
      if (p !== undefined) console.log(`| \`${path}\` | ${r.label} | ${p.status} | ${p.upstream} | ${p.received === '-' ? '-' : `\`${p.received}\``} | ${p.location ?? '-'} |`)
    }
  }
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
  const file = join(ROOT, 'bench/results', `hostile-compare-${Date.now()}.json`)
  writeFileSync(file, JSON.stringify({ command: `node bench/hostile-compare.mjs ${process.argv.slice(2).join(' ')}`.trim(), machine: machineDescription(), versions, holdLimitMs, results }, null, 2) + '\n')
  console.log(`\nRaw figures: ${file.slice(ROOT.length + 1)}`)
}

function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
