// Shared plumbing of the benchmarks: ports, pinned processes, /proc readings, wrk.
import { spawn, execFileSync } from 'node:child_process'
import { createServer, connect } from 'node:net'
import { readFileSync, readdirSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import WebSocket from 'ws'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
/** The navigator CLI measured: this checkout's, or another build's (NAVIGATOR_BENCH_BIN, e.g. an older commit's). */
export const NAVIGATOR_BIN = process.env.NAVIGATOR_BENCH_BIN ?? join(ROOT, 'packages/server/bin/navigator.js')
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
const multiCore = cpus().length > 1
/** The proxy under test runs on this core; the load generator and upstreams on the other. */
export const PROXY_CORE = '0'
export const LOAD_CORE = multiCore ? '1' : '0'

export function machineDescription () {
  const cpu = cpus()
  return `${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${process.platform} ${process.arch}`
}

export function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

export async function waitForPort (port, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`port ${port} did not open within ${timeoutMs} ms`)
}

const started = new Set()
process.on('exit', () => {
  for (const child of started) {
    try { process.kill(-child.pid, 'SIGKILL') } catch {}
  }
})

/** Starts a command pinned to a core, in its own process group, stopped at exit. */
export function spawnPinned (core, command, args, options = {}) {
  const child = spawn('taskset', ['-c', core, command, ...args], {
    stdio: ['ignore', options.stdout ?? 'ignore', 'inherit'],
    detached: true,
    env: { ...process.env, ...options.env },
    cwd: options.cwd ?? ROOT
  })
  started.add(child)
  child.once('exit', () => started.delete(child))
  return child
}

export async function stopProcess (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try { process.kill(-child.pid, 'SIGTERM') } catch {}
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }, 5000)
  await exited
  clearTimeout(timer)
}

/** pid and every descendant, read from /proc. */
export function processTree (pid) {
  const children = new Map()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (!children.has(ppid)) children.set(ppid, [])
      children.get(ppid).push(Number(entry))
    } catch {}
  }
  const out = []
  const queue = [pid]
  while (queue.length > 0) {
    const next = queue.shift()
    out.push(next)
    queue.push(...(children.get(next) ?? []))
  }
  return out
}

/** CPU seconds (user + system) used so far by the given processes. */
export function cpuSeconds (pids) {
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {}
  }
  return ticks / CLK_TCK
}

export function memoryKiB (pid, field = 'VmRSS') {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

function toMs (text) {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text)
  if (!match) return NaN
  const value = Number(match[1])
  return { us: value / 1000, ms: value, s: value * 1000, m: value * 60_000 }[match[2]]
}

/** Runs wrk on the load core and returns { rps, requests, p50, p99, errors, non2xx3xx }. */
export function runWrk (url, { duration = 5, connections = 50, headers = [] } = {}) {
  return new Promise((resolve, reject) => {
    const args = ['-c', LOAD_CORE, 'wrk', '-t1', `-c${connections}`, `-d${duration}s`, '--latency']
    for (const header of headers) args.push('-H', header)
    args.push(url)
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk) => { out += chunk })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${out}`))
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
      const requests = Number(/(\d+) requests in/.exec(out)?.[1])
      const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '')
      const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '')
      const errorsMatch = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
      const errors = errorsMatch ? errorsMatch.slice(1).reduce((a, b) => a + Number(b), 0) : 0
      const non2xx3xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
      resolve({ rps, requests, p50, p99, errors, non2xx3xx, raw: out })
    })
  })
}

export function median (values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export function percentile (values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** Waits until a child prints a line matching re on stdout (stdout must be 'pipe'). */
export function waitForLine (child, re, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    let buffer = ''
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms`)), timeoutMs)
    const onData = (chunk) => {
      buffer += chunk
      const match = re.exec(buffer)
      if (match) {
        clearTimeout(timer)
        child.stdout.off('data', onData)
        child.stdout.resume()
        resolve(match)
      }
    }
    child.stdout.on('data', onData)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`process exited ${code} before ${re}`)) })
  })
}

/**
 * Opens `count` WebSockets to `url`, 100 at a time (more at once can outrun the listen queue). A socket counts as
 * open on its 'open' event, or, with `afterOpen(ws, done)`, once that calls `done` (a subscription answered, say).
 */
export async function openWebSockets (url, count, afterOpen = null) {
  const sockets = []
  for (let i = 0; i < count; i += 100) {
    const batch = []
    for (let j = i; j < Math.min(count, i + 100); j++) {
      batch.push(new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false })
        ws.once('open', () => {
          if (afterOpen === null) resolve(ws)
          else afterOpen(ws, () => { resolve(ws) })
        })
        ws.once('error', reject)
      }))
    }
    sockets.push(...await Promise.all(batch))
  }
  return sockets
}
