#!/usr/bin/env node
// The hot-path benchmark of issue 6: every contender on loopback in front of the same
// kind of upstream, the proxy under test pinned to one core, wrk and the upstreams
// to the other, rounds interleaved (A B C ... A B C ...) after a warm-up.
//
//   node bench/proxy.mjs [--rounds 5] [--duration 5] [--connections 50] [--only a,b,...] [--before DIR]
//
// --before DIR adds a twin of every Navigator contender run from the built checkout in DIR (another commit), so a
// change is measured against what it replaced in the same run.
//
// Prints a markdown table (medians over the rounds) and writes bench/results/proxy-<time>.json.
import { mkdtempSync, writeFileSync, mkdirSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import {
  ROOT, NAVIGATOR_BIN, PROXY_CORE, LOAD_CORE, freePort, waitForPort, spawnPinned, stopProcess,
  processTree, cpuSeconds, memoryKiB, runWrk, median, machineDescription
} from './lib.mjs'

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
    before: { type: 'string' }
  }
})
const rounds = Number(flags.rounds)
const duration = Number(flags.duration)
const connections = Number(flags.connections)
const work = mkdtempSync(join(tmpdir(), 'navigator-bench-'))
const COOKIE = '_navigator_machine'
// The auth contender's user: one bcrypt entry of cost 10 (what `htpasswd -B` writes), bcryptjs from the server package.
const bcrypt = createRequire(join(ROOT, 'packages/server/package.json'))('bcryptjs')
const AUTH_PASSWORD = 'bench-password'

function has (command) {
  try { execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }); return true } catch { return false }
}

async function startUpstream (name) {
  const port = await freePort()
  const child = spawnPinned(LOAD_CORE, process.execPath, [join(ROOT, 'bench/upstream.mjs'), String(port), name])
  await waitForPort(port)
  return { port, child }
}

async function startNavigator ({ sticky, machineId, peers, standalone = false, metrics = false, auth = false, bin = NAVIGATOR_BIN }) {
  const port = await freePort()
  const dir = mkdtempSync(join(work, 'nav-'))
  mkdirSync(join(dir, 'public'))
  writeFileSync(join(dir, 'public', 'app.css'), 'body { color: #222 }\n'.repeat(40))
  if (auth) writeFileSync(join(dir, 'htpasswd'), `bench:${bcrypt.hashSync(AUTH_PASSWORD, 10).replace(/^\$2b\$/, '$2y$')}\n`)
  const peerLines = Object.entries(peers ?? {}).map(([id, url]) => `        ${id}: ${url}`).join('\n')
  const upstreamArgs = (portText) => `["-c", "${LOAD_CORE}", "${process.execPath}", "${join(ROOT, 'bench/upstream.mjs')}", "${portText}", "${machineId}"]`
  const standalonePort = standalone ? await freePort() : null
  const standaloneLines = standalone
    ? `  standalone_servers:
    - name: cable
      match_path: /s/*
      command: taskset
      args: ${upstreamArgs(standalonePort)}
      port: ${standalonePort}
`
    : ''
  const yaml = `server:
  listen: ${port}
${metrics ? '  metrics: {}\n' : ''}${auth ? 'auth:\n  enabled: true\n  htpasswd: htpasswd\n' : ''}routes:
  fly:
    sticky_sessions:
      enabled: ${sticky}
${peerLines ? `      peers:\n${peerLines}\n` : ''}applications:
  command: taskset
  args: ${upstreamArgs('${PORT}')}
  health_check: /up
  tenants:
    - name: app
      path: /
      start: eager
${standaloneLines}`
  writeFileSync(join(dir, 'navigator.yml'), yaml)
  const child = spawnPinned(PROXY_CORE, process.execPath, [bin, join(dir, 'navigator.yml')], {
    env: { FLY_MACHINE_ID: machineId, FLY_APP_NAME: 'bench', FLY_REGION: 'lcl', LOG_LEVEL: 'info' }
  })
  await waitForPort(port)
  // The first request starts nothing (eager tenant) but makes sure the tenant (and the standalone server) is ready.
  for (const path of standalone ? ['/', '/s/page'] : ['/']) {
    for (let i = 0; i < 100; i++) {
      const headers = auth ? { authorization: `Basic ${Buffer.from(`bench:${AUTH_PASSWORD}`).toString('base64')}` } : {}
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers }).catch(() => null)
      if (res?.ok) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return { port, child }
}

async function startHaproxy (m1, m2) {
  const port = await freePort()
  const file = join(work, 'haproxy.cfg')
  writeFileSync(file, `global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:${port}
  default_backend machines
backend machines
  cookie ${COOKIE} insert indirect nocache
  server m1 127.0.0.1:${m1} cookie m1
  server m2 127.0.0.1:${m2} cookie m2
`)
  const child = spawnPinned(PROXY_CORE, 'haproxy', ['-db', '-f', file])
  await waitForPort(port)
  return { port, child }
}

async function startNginx (m1, m2) {
  const port = await freePort()
  const dir = mkdtempSync(join(work, 'nginx-'))
  writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1;
master_process off;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr error;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream m1 { server 127.0.0.1:${m1}; keepalive 128; }
  upstream m2 { server 127.0.0.1:${m2}; keepalive 128; }
  map $cookie_${COOKIE} $machine { m2 m2; default m1; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://$machine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  const child = spawnPinned(PROXY_CORE, 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')])
  await waitForPort(port)
  return { port, child }
}

async function startCaddy (m1, m2) {
  const port = await freePort()
  const dir = mkdtempSync(join(work, 'caddy-'))
  writeFileSync(join(dir, 'Caddyfile'), `{
  admin off
  auto_https off
}
http://127.0.0.1:${port} {
  log {
    output discard
  }
  reverse_proxy 127.0.0.1:${m1} 127.0.0.1:${m2} {
    lb_policy cookie ${COOKIE}
  }
}
`)
  const child = spawnPinned(PROXY_CORE, 'caddy', ['run', '--adapter', 'caddyfile', '--config', join(dir, 'Caddyfile')], {
    env: { GOMAXPROCS: '1', XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir, HOME: dir }
  })
  await waitForPort(port)
  // Caddy's cookie is an HMAC of the upstream address: take the one it hands out.
  const res = await fetch(`http://127.0.0.1:${port}/`)
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]
  return { port, child, cookie }
}

async function startNode (script, ...args) {
  const port = await freePort()
  const child = spawnPinned(PROXY_CORE, process.execPath, [join(ROOT, script), String(port), ...args.map(String)])
  await waitForPort(port)
  return { port, child }
}

const upstreams = { m1: await startUpstream('m1'), m2: await startUpstream('m2') }
const m1 = upstreams.m1.port
const m2 = upstreams.m2.port

/** Each contender: a name, how to start it, the request wrk sends, and which pid is the proxy. */
const contenders = [
  {
    name: 'navigator-sticky',
    label: 'Navigator, sticky sessions (cookie for this Machine)',
    start: async (bin) => {
      const second = await freePort()
      return startNavigator({ sticky: true, machineId: 'm1', peers: { m1: 'http://127.0.0.1:1', m2: `http://127.0.0.1:${second}` }, bin })
    },
    headers: () => [`Cookie: ${COOKIE}=m1`]
  },
  {
    // The same with server.metrics on (issue 17): every request counted by step, the sticky decision and the
    // tenant's latency, nothing scraped meanwhile.
    name: 'navigator-sticky-metrics',
    label: 'Navigator, sticky sessions (cookie for this Machine), metrics on',
    start: async (bin) => {
      const second = await freePort()
      return startNavigator({ sticky: true, machineId: 'm1', peers: { m1: 'http://127.0.0.1:1', m2: `http://127.0.0.1:${second}` }, metrics: true, bin })
    },
    headers: () => [`Cookie: ${COOKIE}=m1`]
  },
  {
    // The same with auth on (issue 14): a bcrypt user, verified once and then found in the cache of verified
    // credentials on every request.
    name: 'navigator-sticky-auth',
    label: 'Navigator, sticky sessions (cookie for this Machine), auth on (bcrypt, cached)',
    start: async (bin) => {
      const second = await freePort()
      return startNavigator({ sticky: true, machineId: 'm1', peers: { m1: 'http://127.0.0.1:1', m2: `http://127.0.0.1:${second}` }, auth: true, bin })
    },
    headers: () => [`Cookie: ${COOKIE}=m1`, `Authorization: Basic ${Buffer.from(`bench:${AUTH_PASSWORD}`).toString('base64')}`]
  },
  {
    // A process of its own (same config as navigator-sticky): sharing one made the sticky contender's figures
    // depend on the replay load in between (sticky on/off 0.92-0.96 shared, 0.97-1.0 apart; bench/README.md).
    name: 'navigator-replay',
    label: 'Navigator answering replays (cookie for another Machine)',
    start: async (bin) => {
      const second = await freePort()
      return startNavigator({ sticky: true, machineId: 'm1', peers: { m1: 'http://127.0.0.1:1', m2: `http://127.0.0.1:${second}` }, bin })
    },
    headers: () => [`Cookie: ${COOKIE}=m2`]
  },
  {
    name: 'navigator-plain',
    label: 'Navigator, sticky sessions off',
    start: (bin) => startNavigator({ sticky: false, machineId: 'm1', bin }),
    headers: () => [`Cookie: ${COOKIE}=m1`]
  },
  {
    name: 'navigator-standalone',
    label: 'Navigator, sticky sessions, to a standalone server',
    start: async (bin) => {
      const second = await freePort()
      return startNavigator({ sticky: true, machineId: 'm1', peers: { m1: 'http://127.0.0.1:1', m2: `http://127.0.0.1:${second}` }, standalone: true, bin })
    },
    path: '/s/page',
    headers: () => [`Cookie: ${COOKIE}=m1`]
  },
  {
    // The tenant of the standalone contender's process: the two paths side by side in one Navigator.
    name: 'navigator-standalone-tenant',
    label: 'Navigator, sticky sessions, to the tenant beside that standalone server',
    sharedWith: 'navigator-standalone',
    headers: () => [`Cookie: ${COOKIE}=m1`]
  },
  {
    name: 'navigator-static',
    label: 'Navigator, a static file (2 KiB)',
    start: (bin) => startNavigator({ sticky: true, machineId: 'm1', bin }),
    path: '/app.css',
    headers: () => []
  },
  {
    name: 'fastify-reply-from',
    label: 'minimal Fastify + @fastify/reply-from cookie proxy',
    start: () => startNode('bench/contenders/fastify-reply-from.mjs', m1, m2),
    headers: () => [`Cookie: ${COOKIE}=m1`]
  },
  {
    name: 'fastify-bare',
    label: 'bare Fastify route giving the replay answer (no proxying)',
    start: () => startNode('bench/contenders/fastify-bare.mjs'),
    headers: () => [`Cookie: ${COOKIE}=m2`]
  },
  {
    name: 'haproxy',
    label: 'HAProxy, cookie insert indirect nocache, 1 thread',
    requires: 'haproxy',
    start: () => startHaproxy(m1, m2),
    headers: () => [`Cookie: ${COOKIE}=m1`]
  },
  {
    name: 'nginx',
    label: 'nginx, proxy_pass with upstream keepalive, 1 worker',
    requires: 'nginx',
    start: () => startNginx(m1, m2),
    headers: () => [`Cookie: ${COOKIE}=m1`]
  },
  {
    name: 'caddy',
    label: 'Caddy, lb_policy cookie, GOMAXPROCS=1',
    requires: 'caddy',
    start: () => startCaddy(m1, m2),
    headers: (instance) => [`Cookie: ${instance.cookie}`]
  },
  {
    name: 'upstream-direct',
    label: 'the upstream directly (no proxy)',
    start: async () => ({ port: m1, child: upstreams.m1.child, shared: true }),
    headers: () => []
  }
]

// The same Navigator contenders, run from another build (--before), each right after its twin in every round.
if (flags.before !== undefined) {
  const bin = join(flags.before, 'packages/server/bin/navigator.js')
  for (let i = contenders.length - 1; i >= 0; i--) {
    const c = contenders[i]
    if (!c.name.startsWith('navigator-')) continue
    const sharedWith = c.sharedWith === undefined ? undefined : `${c.sharedWith}-before`
    contenders.splice(i + 1, 0, { ...c, name: `${c.name}-before`, label: `${c.label} (before)`, sharedWith, start: () => c.start(bin) })
  }
}

const only = flags.only ? new Set(flags.only.split(',')) : null
const selected = contenders.filter((c) => (!only || only.has(c.name)) && (!c.requires || has(c.requires)))
for (const c of contenders) {
  if (c.requires && !has(c.requires)) console.error(`skipping ${c.name}: ${c.requires} is not installed`)
}

const instances = new Map()
for (const contender of selected) {
  const shared = contender.sharedWith === undefined ? null : instances.get(contender.sharedWith)
  instances.set(contender.name, shared ? { ...shared, shared: true } : await contender.start())
}

const results = Object.fromEntries(selected.map((c) => [c.name, []]))

async function measure (contender, seconds) {
  const instance = instances.get(contender.name)
  const pids = processTree(instance.child.pid).filter((pid) => pid !== instance.child.pid || true)
  // The proxy's own CPU: its process tree minus the upstreams it supervises (pinned elsewhere).
  const proxyPids = contender.name === 'upstream-direct' ? pids : proxyOnly(pids)
  const before = cpuSeconds(proxyPids)
  const run = await runWrk(`http://127.0.0.1:${instance.port}${contender.path ?? '/app/page'}`, {
    duration: seconds, connections, headers: contender.headers(instance)
  })
  const cpu = cpuSeconds(proxyPids) - before
  const rssKiB = Math.max(...proxyPids.map((pid) => memoryKiB(pid, 'VmHWM')))
  return { ...run, raw: undefined, cpuUsPerRequest: (cpu * 1e6) / run.requests, peakRssMiB: rssKiB / 1024 }
}

/** Drops the supervised upstream (a `taskset ... upstream.mjs` child) from a Navigator process tree. */
function proxyOnly (pids) {
  const [root, ...rest] = pids
  const upstreamPids = new Set()
  for (const pid of rest) {
    try {
      const cmd = execFileSync('cat', [`/proc/${pid}/cmdline`]).toString()
      if (cmd.includes('upstream.mjs')) upstreamPids.add(pid)
    } catch {}
  }
  return [root, ...rest.filter((pid) => !upstreamPids.has(pid))]
}

console.error(`warm-up: ${flags.warmup} s each`)
for (const contender of selected) await measure(contender, Number(flags.warmup))
for (let round = 1; round <= rounds; round++) {
  for (const contender of selected) {
    const figures = await measure(contender, duration)
    results[contender.name].push(figures)
    console.error(`round ${round} ${contender.name}: ${figures.rps.toFixed(0)} req/s, ${figures.cpuUsPerRequest.toFixed(1)} µs CPU/req, p50 ${figures.p50} ms, p99 ${figures.p99} ms, errors ${figures.errors}, non-2xx/3xx ${figures.non2xx3xx}`)
  }
}

const summary = selected.map((c) => {
  const runs = results[c.name]
  return {
    name: c.name,
    label: c.label,
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
    peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB)),
    errors: runs.reduce((a, r) => a + r.errors + r.non2xx3xx, 0)
  }
})

const by = Object.fromEntries(summary.map((s) => [s.name, s]))
const base = by['navigator-sticky'] ?? summary[0]
const lines = []
lines.push(`Machine: ${machineDescription()}; proxy pinned to core ${PROXY_CORE}, wrk and upstreams to core ${LOAD_CORE}.`)
lines.push(`Command: node bench/proxy.mjs --rounds ${rounds} --duration ${duration} --connections ${connections}; medians of ${rounds} interleaved rounds.`)
lines.push('')
lines.push('| contender | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | req/s vs Navigator sticky | CPU vs Navigator sticky | errors |')
lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const s of summary) {
  lines.push(`| ${s.label} | ${s.rps.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.cpuUsPerRequest.toFixed(1)} | ${s.peakRssMiB.toFixed(1)} | ${(s.rps / base.rps).toFixed(2)} | ${(s.cpuUsPerRequest / base.cpuUsPerRequest).toFixed(2)} | ${s.errors} |`)
}
lines.push('')
const ratio = (a, b, field) => (by[a] && by[b] ? (by[a][field] / by[b][field]).toFixed(3) : 'n/a')
lines.push(`- sticky on / sticky off, req/s: ${ratio('navigator-sticky', 'navigator-plain', 'rps')} (target >= 0.97)`)
lines.push(`- metrics on / off, sticky proxied request, CPU per request: ${ratio('navigator-sticky-metrics', 'navigator-sticky', 'cpuUsPerRequest')} (target <= 1.03), req/s: ${ratio('navigator-sticky-metrics', 'navigator-sticky', 'rps')}`)
lines.push(`- replay answers / bare Fastify route, req/s: ${ratio('navigator-replay', 'fastify-bare', 'rps')} (target >= 0.8)`)
lines.push(`- Navigator sticky / Fastify + reply-from, CPU per request: ${ratio('navigator-sticky', 'fastify-reply-from', 'cpuUsPerRequest')}`)
lines.push(`- Navigator sticky / Fastify + reply-from, req/s: ${ratio('navigator-sticky', 'fastify-reply-from', 'rps')} (target >= 1.5)`)
lines.push(`- standalone server / the tenant beside it (one Navigator), req/s: ${ratio('navigator-standalone', 'navigator-standalone-tenant', 'rps')} (target >= 0.95)`)
lines.push(`- standalone server / the sticky contender's tenant (two Navigators), req/s: ${ratio('navigator-standalone', 'navigator-sticky', 'rps')}`)
for (const s of summary) {
  if (s.name.endsWith('-before')) lines.push(`- ${s.name.slice(0, -'-before'.length)} now / before, req/s: ${ratio(s.name.slice(0, -'-before'.length), s.name, 'rps')}, CPU per request: ${ratio(s.name.slice(0, -'-before'.length), s.name, 'cpuUsPerRequest')}`)
}
const report = lines.join('\n')
console.log(report)

if (!existsSync(join(ROOT, 'bench/results'))) mkdirSync(join(ROOT, 'bench/results'))
writeFileSync(join(ROOT, `bench/results/proxy-${Date.now()}.json`), JSON.stringify({ machine: machineDescription(), flags, summary, results }, null, 2))

for (const instance of instances.values()) if (!instance.shared) await stopProcess(instance.child)
await stopProcess(upstreams.m1.child)
await stopProcess(upstreams.m2.child)
process.exit(0)
