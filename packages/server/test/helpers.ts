import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

export const BIN = fileURLToPath(new URL('../bin/navigator.js', import.meta.url))
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
/** The fixture tenant app (answers with what it saw; see fixtures/tenant.mjs). */
export const TENANT_APP = join(FIXTURES, 'tenant.mjs')
/** The fixture standalone server (an echoing WebSocket server on the port given as its argument). */
export const CABLE_APP = join(FIXTURES, 'cable.mjs')

interface Teardown { teardown (fn: () => unknown): void }

export interface LogLine { msg?: string, level?: number, [key: string]: unknown }

export interface Running {
  child: ChildProcess
  dir: string
  address: string
  logs: LogLine[]
  stderr: () => string
  waitForLog (predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/**
 * How long a test Navigator drains on SIGTERM. The default (30 s) outlives the teardown's patience, and a Navigator
 * killed while draining leaves its tenants running; test configs get this instead unless they set their own.
 */
export const TEST_SHUTDOWN_TIMEOUT = '1s'
/** How long teardown waits after SIGTERM before it kills Navigator's process group (well above the drain time). */
export const STOP_GRACE_MS = 8_000

/**
 * A config text with `server.shutdown_timeout` set to TEST_SHUTDOWN_TIMEOUT when the text has a top-level
 * `server:` section (indented by two spaces) that does not set one; any other text is returned as it is.
 */
export function withTestShutdown (yaml: string): string {
  if (/^\s*shutdown_timeout:/m.test(yaml)) return yaml
  return yaml.replace(/^server:[ \t]*\n(?= {2}\S)/m, (section) => `${section}  shutdown_timeout: ${TEST_SHUTDOWN_TIMEOUT}\n`)
}

/** (Re)writes `<dir>/navigator.yml` (see withTestShutdown). */
export function writeConfig (dir: string, yaml: string): void {
  writeFileSync(join(dir, 'navigator.yml'), withTestShutdown(yaml))
}

/** Writes files (path -> content) under a new temporary folder and returns it; `navigator.yml` as writeConfig does. */
export function tempDir (files: Record<string, string | Buffer> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-server-'))
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), name === 'navigator.yml' && typeof content === 'string' ? withTestShutdown(content) : content)
  }
  return dir
}

/** Process ids (other than this one) whose working directory is `dir` or below it, from /proc. */
export function processesIn (dir: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    let cwd: string
    try { cwd = readlinkSync(`/proc/${entry}/cwd`) } catch { continue }
    if (cwd === dir || cwd.startsWith(`${dir}/`)) found.push(Number(entry))
  }
  return found
}

function signal (pid: number, name: NodeJS.Signals): void {
  try { process.kill(pid, name) } catch {}
}

/** Resolves true when `promise` settles within `ms`, false otherwise. */
async function within (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, ms) })
  try {
    return await Promise.race([promise.then(() => true), expired])
  } finally {
    clearTimeout(timer)
  }
}

/** Waits (bounded, checking every 50 ms) until no process works in `dir`; returns the ones still there. */
async function settled (dir: string, ms: number): Promise<number[]> {
  const deadline = Date.now() + ms
  let left = processesIn(dir)
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    left = processesIn(dir)
  }
  return left
}

/**
 * Stops a Navigator started by startNavigator: SIGTERM, then after STOP_GRACE_MS SIGKILL to its whole process group;
 * then any process still working in `dir` (a tenant Navigator did not stop) is killed too and reported by throwing,
 * which fails the test that started it (tap counts an error thrown in teardown as a failure).
 */
export async function stopNavigator (child: ChildProcess, exited: Promise<unknown>, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM')
    if (!await within(exited, STOP_GRACE_MS)) {
      signal(-(child.pid as number), 'SIGKILL')
      await within(exited, 2_000)
    }
  }
  // Navigator waits for its tenants before it exits; a short bound covers one that is still being reaped.
  const left = await settled(dir, 2_000)
  for (const pid of left) signal(pid, 'SIGKILL')
  if (left.length > 0) {
    throw new Error(`processes left running in ${dir} after navigator stopped (killed now): ${left.join(', ')}`)
  }
}

/** Runs the CLI to completion and collects its output. */
export async function runCli (args: string[], options: number | { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const { env: extraEnv = {}, timeoutMs = 10_000 } = typeof options === 'number' ? { timeoutMs: options } : options
  const env = { ...process.env, ...extraEnv }
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>((resolve) => { child.once('exit', (c) => { resolve(c) }) })
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** A port nobody listens on right now. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

/**
 * A line of `logging.format: text` (`<time> <LEVEL> <message> key=value ...`, a value in JSON quotes when it needs
 * them) as the JSON line it stands for; any other line is `{ msg: line }`.
 */
export function textLogLine (text: string): LogLine {
  const head = /^(\S+) (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) /.exec(text)
  if (head === null) return { msg: text }
  let rest = text.slice(head[0].length)
  const fields: LogLine = {}
  const pair = / ([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)$/
  for (let match = pair.exec(rest); match !== null; match = pair.exec(rest)) {
    fields[match[1]] = match[2].startsWith('"') ? JSON.parse(match[2]) : match[2]
    rest = rest.slice(0, match.index)
  }
  const level = { TRACE: 10, DEBUG: 20, INFO: 30, WARN: 40, ERROR: 50, FATAL: 60 }[head[2]]
  return { time: head[1], level, ...fields, msg: rest }
}

/**
 * A port that stays bound (so no other test, and no tenant of another Navigator, can take it) until `release` is
 * called, just before the process that is to listen on it starts.
 */
export async function reservePort (): Promise<{ port: number, release: () => Promise<void> }> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      resolve({ port, release: async () => await new Promise<void>((resolve) => { server.close(() => { resolve() }) }) })
    })
  })
}

/**
 * The first port for a Navigator's tenants: below the kernel's ephemeral range (32768 and up on Linux), where the
 * ports that tests ask the kernel for are handed out, so a tenant counting upwards never lands on one of them.
 */
export function tenantStartPort (): number {
  return 10_000 + Math.floor(Math.random() * 22_000)
}

/**
 * Starts `navigator <dir>/navigator.yml` as a real process and waits for its
 * "listening" log line. Stopped at teardown by stopNavigator (which fails the test if a process outlives it).
 */
export async function startNavigator (t: Teardown, dir: string, env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const child = spawn(process.execPath, [BIN, join(dir, 'navigator.yml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Leader of its own process group, so that teardown can kill it with whatever it started in that group.
    detached: true,
    env: { ...process.env, LOG_LEVEL: 'info', ...env }
  })
  const logs: LogLine[] = []
  const waiters = new Set<{ predicate: (line: LogLine) => boolean, resolve: (line: LogLine) => void }>()
  let errors = ''
  let pending = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString()
    let newline
    while ((newline = pending.indexOf('\n')) !== -1) {
      const text = pending.slice(0, newline)
      pending = pending.slice(newline + 1)
      let line: LogLine
      try { line = JSON.parse(text) as LogLine } catch { line = textLogLine(text) }
      logs.push(line)
      for (const waiter of waiters) {
        if (waiter.predicate(line)) {
          waiters.delete(waiter)
          waiter.resolve(line)
        }
      }
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => { errors += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })

  async function waitForLog (predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const seen = logs.find(predicate)
    if (seen !== undefined) return seen
    return await new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (line: LogLine) => {
          clearTimeout(timer)
          resolve(line)
        }
      }
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        reject(new Error(`no such log line within ${timeoutMs} ms; stderr: ${errors}; logs: ${JSON.stringify(logs.slice(-20))}`))
      }, timeoutMs)
      waiters.add(waiter)
    })
  }

  t.teardown(async () => { await stopNavigator(child, exited, dir) })

  const listening = await Promise.race([
    waitForLog((line) => line.msg === 'listening', 15_000),
    exited.then(({ code }) => { throw new Error(`navigator exited with ${String(code)}: ${errors}`) })
  ])
  return { child, dir, address: listening.address as string, logs, stderr: () => errors, waitForLog, exited }
}

/** A config of tenants of the fixture app behind a Navigator; every list holds lines as they appear in the file. */
export interface Site {
  /** `server.listen`; a free port is picked by Navigator unless given. */
  listen?: string
  /** Lines under `server:` after `listen`. */
  server?: string[]
  /** Lines under `routes:` (no routes section without them). */
  routes?: string[]
  /** Lines under `applications:` after `start_port` and before `tenants:`. */
  applications?: string[]
  /** The tenants, each from tenant(). */
  tenants: string[][]
  /** Lines under `applications:` after the tenants (e.g. `standalone_servers:`). */
  after?: string[]
  /** `applications.start_port`; a free port unless given. */
  startPort?: number
}

/** The lines of one tenant entry under `applications.tenants`; `more` are its further keys, unindented. */
export function tenant (name: string, path: string, ...more: string[]): string[] {
  return [`    - name: ${name}`, `      path: ${path}`, ...more.map((line) => `      ${line}`)]
}

/**
 * The `after` lines of a Site with one standalone server, `cable` on /cable: CABLE_APP listening on `port`, with
 * `extraArgs` after the port (the fixture's start delay).
 */
export function cableServer (port: number, ...extraArgs: string[]): string[] {
  return [
    '  standalone_servers:',
    '    - name: cable',
    '      match_path: /cable',
    '      command: node',
    `      args: ${JSON.stringify([CABLE_APP, String(port), ...extraArgs])}`,
    `      port: ${port}`
  ]
}

/** The navigator.yml text of a Site (running TENANT_APP with `command: node`). */
export async function siteConfig (site: Site): Promise<string> {
  return [
    'server:',
    `  listen: ${site.listen ?? '"127.0.0.1:0"'}`,
    ...site.server ?? [],
    ...site.routes === undefined ? [] : ['routes:', ...site.routes],
    'applications:',
    '  command: node',
    `  args: [${JSON.stringify(TENANT_APP)}]`,
    `  start_port: ${site.startPort ?? tenantStartPort()}`,
    ...site.applications ?? [],
    '  tenants:',
    ...site.tenants.flat(),
    ...site.after ?? [],
    ''
  ].join('\n')
}

/**
 * Writes a Site's config into a new temporary folder (with `files` beside it), starts Navigator on it and, before
 * returning, asks each of `warm` (paths, with `headers`) once: any answer but 200 is thrown as a set-up failure.
 */
export async function startSite (t: Teardown, site: Site, options: {
  env?: NodeJS.ProcessEnv
  warm?: string[]
  headers?: Record<string, string>
  files?: Record<string, string | Buffer>
} = {}): Promise<Running> {
  const dir = tempDir({ ...options.files, 'navigator.yml': await siteConfig(site) })
  const navigator = await startNavigator(t, dir, options.env)
  for (const path of options.warm ?? []) {
    const warm = await http(navigator.address, path, { headers: options.headers })
    if (warm.status !== 200) throw new Error(`${path} does not answer: ${warm.status}`)
  }
  return navigator
}

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
}

/** One HTTP request with the path sent exactly as given (no URL normalisation). */
export async function http (address: string, path: string, options: { method?: string, headers?: Record<string, string>, body?: Buffer | string } = {}): Promise<Answer> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString() })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

export interface FakeMachinesApi {
  /** Every call the API received, in order. */
  calls: Array<{ method: string, url: string }>
  /** Settles at the first call. */
  firstCall: Promise<void>
}

/** Fly's Machines API as a test needs it: an HTTP server on a real Unix socket that records calls and answers 200. */
export async function startFakeMachinesApi (t: Teardown, socketPath: string): Promise<FakeMachinesApi> {
  const calls: FakeMachinesApi['calls'] = []
  let called: () => void = () => {}
  const firstCall = new Promise<void>((resolve) => { called = resolve })
  const api = createHttpServer((req, res) => {
    calls.push({ method: req.method ?? '', url: req.url ?? '' })
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    called()
  })
  await new Promise<void>((resolve) => { api.listen(socketPath, resolve) })
  t.teardown(() => { api.close() })
  return { calls, firstCall }
}

/** The value of one series in a scrape (`name{labels}`, labels as written), or undefined when it is not there. */
export function sample (text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return undefined
}

/** Every sample of a metrics scrape, by series. */
export function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    out.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return out
}

/** How much each series matching `names` grew between two scrapes (the metrics step's own requests aside); 0 left out. */
export function growth (before: string, after: string, names: RegExp): Record<string, number> {
  const from = samples(before)
  const out: Record<string, number> = {}
  for (const [series, value] of samples(after)) {
    if (!names.test(series) || series.includes('step="metrics"')) continue
    const grew = value - (from.get(series) ?? 0)
    if (grew !== 0) out[series] = grew
  }
  return out
}

/** Whether a process runs: it exists and is not a zombie (dead, not yet reaped by whoever inherited it). */
export function alive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Polls `check` every `stepMs` until it holds (true) or `ms` have passed (false). */
export async function waitFor (check: () => boolean, ms: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, stepMs))
  }
  return true
}

/** The status of a WebSocket handshake with these headers: 101 when it opened (then closed again). */
export async function handshake (address: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const ws = new WebSocket(address.replace(/^http/, 'ws') + path, { headers })
  return await new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.close()
      resolve(101)
    })
    ws.once('unexpected-response', (req, res) => {
      res.resume()
      req.destroy()
      resolve(res.statusCode ?? 0)
    })
    ws.once('error', reject)
  })
}
