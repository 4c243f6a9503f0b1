// Shared set-up of the end-to-end tests: real navigator processes running the demo behind the edge.
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { FlyEdge, type EdgeErrorEvent, type FlyEdgeOptions, type RouteEvent } from '../src/edge.js'
import { launchMachines, type LaunchedMachines } from '../src/launch.js'
import type { MachineLauncher } from '../src/machines.js'
import { request, type Reply } from './fixtures.js'

export const DEMO_DIR = fileURLToPath(new URL('../../../examples/demo/', import.meta.url))
export const DEMO_CONFIG = join(DEMO_DIR, 'navigator.yml')
export const COOKIE = '_navigator_machine'
/**
 * The drain time of the test Machines: inside the launcher's stop grace (10 s), so a Machine stopped at teardown
 * exits by itself and stops its tenants, instead of being killed while draining (its tenants, in their own process
 * groups, would outlive it); longer than the tests' slow requests (1.5 s), which a SIGTERM must let finish. The demo
 * itself keeps the default (30 s).
 */
export const TEST_SHUTDOWN_TIMEOUT = '5s'

interface Teardown { teardown (fn: () => unknown): void }

/** One replay the edge carried out (its 'replay' event): the Machine that answered with fly-replay. */
export interface ReplayRecord { issuer: string, replays: number }

export interface DemoFly {
  edge: FlyEdge
  launched: LaunchedMachines
  routes: RouteEvent[]
  output: string[]
  replays: ReplayRecord[]
  edgeErrors: EdgeErrorEvent[]
  /** Machines that destroyMachine destroyed: the edge's launcher refuses to start them again. */
  destroyed: Set<string>
}

/**
 * The demo config, optionally edited (text replacements), written to a temporary folder with
 * absolute paths to the demo's files and `server.shutdown_timeout: TEST_SHUTDOWN_TIMEOUT` unless it sets one.
 */
export async function demoConfig (t: Teardown, edits: Array<[string, string]> = []): Promise<string> {
  let text = await readFile(DEMO_CONFIG, 'utf8')
  text = text.replace('public_dir: public', `public_dir: ${join(DEMO_DIR, 'public')}`)
  text = text.replaceAll('working_dir: .', `working_dir: ${DEMO_DIR}`)
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`demo config has no ${from}`)
    text = text.replace(from, to)
  }
  if (!/^\s*shutdown_timeout:/m.test(text)) text = text.replace(/^server:[ \t]*\n/m, (section) => `${section}  shutdown_timeout: ${TEST_SHUTDOWN_TIMEOUT}\n`)
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-e2e-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'navigator.yml')
  await writeFile(file, text)
  return file
}

export async function startDemoFly (t: Teardown, options: {
  config?: string
  count?: number
  app?: string
  ids?: string[]
  edge?: Partial<FlyEdgeOptions>
} = {}): Promise<DemoFly> {
  const app = options.app ?? 'e2e-demo'
  const output: string[] = []
  const launched = await launchMachines({
    config: options.config ?? await demoConfig(t),
    count: options.count ?? 3,
    app,
    ids: options.ids,
    regions: ['iad', 'ord', 'ams'],
    env: { LOG_LEVEL: 'info' },
    onOutput: (id, line) => { output.push(`[${id}] ${line}`) }
  })
  t.teardown(() => launched.stop())
  const destroyed = new Set<string>()
  const edge = new FlyEdge({
    app,
    machines: launched.machines,
    launcher: refusingDestroyed(launched.launcher, destroyed),
    flycastPorts: launched.flycastPorts,
    ...options.edge
  })
  await edge.listen()
  t.teardown(() => edge.close())
  const routes: RouteEvent[] = []
  const replays: ReplayRecord[] = []
  const edgeErrors: EdgeErrorEvent[] = []
  edge.on('route', (event: RouteEvent) => routes.push(event))
  edge.on('replay', (event: ReplayRecord) => replays.push({ issuer: event.issuer, replays: event.replays }))
  edge.on('edge-error', (event: EdgeErrorEvent) => edgeErrors.push(event))
  return { edge, launched, routes, output, replays, edgeErrors, destroyed }
}

/**
 * The launcher the edge gets: the launched one, except that a destroyed Machine cannot be started or resumed again,
 * as on Fly, where autostart has nothing left to start.
 */
function refusingDestroyed (launcher: MachineLauncher, destroyed: Set<string>): MachineLauncher {
  const refuse = (id: string): void => {
    if (destroyed.has(id)) throw new Error(`Machine ${id} was destroyed`)
  }
  return {
    start: async (id) => { refuse(id); await launcher.start(id) },
    resume: async (id) => { refuse(id); await launcher.resume(id) },
    stop: async (id) => { await launcher.stop(id) },
    suspend: async (id) => { await launcher.suspend(id) },
    watchExits: launcher.watchExits?.bind(launcher)
  }
}

/** What one request did at the edge: its reply, the deliveries, the replays and the edge's errors it caused. */
export interface Traced {
  reply: Reply
  routes: RouteEvent[]
  replays: ReplayRecord[]
  edgeErrors: EdgeErrorEvent[]
  ms: number
}

/**
 * Sends one request and collects the edge's events it caused. The tests send one request at a time, and a Machine's
 * answer is relayed only after its 'route' event, so every event after the start belongs to this request.
 */
export async function traced (fly: DemoFly, send: () => Promise<Reply>): Promise<Traced> {
  const at = { routes: fly.routes.length, replays: fly.replays.length, edgeErrors: fly.edgeErrors.length }
  const started = Date.now()
  const reply = await send()
  return {
    reply,
    routes: fly.routes.slice(at.routes),
    replays: fly.replays.slice(at.replays),
    edgeErrors: fly.edgeErrors.slice(at.edgeErrors),
    ms: Date.now() - started
  }
}

/** The Machines' log lines (JSON, as `[id] {...}`) whose message is `msg`, optionally of one Machine. */
export function logLines (fly: DemoFly, msg: string, id?: string): string[] {
  return fly.output.filter((line) => {
    const space = line.indexOf(' ')
    if (id !== undefined && line.slice(0, space) !== `[${id}]`) return false
    try {
      return (JSON.parse(line.slice(space + 1)) as { msg?: unknown }).msg === msg
    } catch {
      return false
    }
  })
}

/**
 * The Machines' log lines with message `msg` (logLines), once there are at least `count`: Navigator writes its log in
 * batches, a moment after the request that caused a line. Gives up after `timeoutMs` and returns what there is.
 */
export async function waitForLogLines (fly: DemoFly, msg: string, count = 1, id?: string, timeoutMs = 5_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs
  let lines = logLines(fly, msg, id)
  while (lines.length < count && Date.now() < deadline) {
    await sleep(20)
    lines = logLines(fly, msg, id)
  }
  return lines
}

/** Linux: every live process, with its parent and command line, read from /proc. */
function processTable (): Array<{ pid: number, ppid: number, args: string[] }> {
  const table: Array<{ pid: number, ppid: number, args: string[] }> = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1')
      // After the command name (which may hold spaces): state ppid ...
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (state === 'Z' || state === 'X') continue
      table.push({ pid: Number(entry), ppid: Number(ppid), args: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0') })
    } catch {
      // The process ended while the table was read.
    }
  }
  return table
}

/** The pid of a launched Machine's navigator process: the one whose command line names the Machine's own config file. */
function navigatorPid (fly: DemoFly, id: string): number {
  const file = fly.launched.configFiles[id]
  const found = processTable().find((p) => p.args.includes(file))
  if (found === undefined) throw new Error(`no navigator process for Machine ${id}`)
  return found.pid
}

/**
 * Kills a Machine as a crash or a lost host would: every process of it (its navigator, its tenants, its standalone
 * servers, each in a process group of its own) gets SIGKILL at once. The launcher reports the exit and the edge marks
 * the Machine stopped, as Fly does when a Machine's main process ends; autostart may start it again.
 */
export async function killMachine (fly: DemoFly, id: string): Promise<void> {
  const table = processTable()
  const doomed = [navigatorPid(fly, id)]
  // Descendants, whatever process group they are in.
  for (let i = 0; i < doomed.length; i++) for (const p of table) if (p.ppid === doomed[i]) doomed.push(p.pid)
  for (const pid of doomed) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  // Waits for the edge to see it stopped, whether the exit was reported first or this stop comes first.
  await fly.edge.stopMachine(id)
}

/**
 * Destroys a Machine: it is killed (killMachine), as a host that goes away kills it, then the edge destroys it
 * (`FlyEdge.destroyMachine`: it leaves the app, replays naming it get `reason=no_candidate`). With `unlist`, the other started Machines also reload a config whose `peers` no longer name it, which is what DNS
 * discovery (`all.vms.<app>.internal`) shows them on Fly once a Machine is destroyed; without it they still list it,
 * as until discovery's next refresh.
 */
export async function destroyMachine (fly: DemoFly, id: string, options: { unlist?: boolean } = {}): Promise<void> {
  fly.destroyed.add(id)
  await killMachine(fly, id)
  await fly.edge.destroyMachine(id)
  if (options.unlist !== true) return
  const others = fly.edge.machines().filter((m) => m.state === 'started' && !fly.destroyed.has(m.id)).map((m) => m.id)
  await Promise.all(others.map((other) => unlistPeer(fly, other, id)))
}

export const RELOADED = 'configuration reloaded'

/** Removes `gone` from the `peers` of Machine `id`'s config file, then reloads it there (SIGHUP) and waits for that. */
async function unlistPeer (fly: DemoFly, id: string, gone: string): Promise<void> {
  const file = fly.launched.configFiles[id]
  const text = await readFile(file, 'utf8')
  const edited = text.replace(/^(\s*peers: )(\{.*\})$/m, (_line, key: string, json: string) => {
    const peers = JSON.parse(json) as Record<string, string>
    delete peers[gone]
    return key + JSON.stringify(peers)
  })
  if (edited === text) throw new Error(`Machine ${id}'s config does not list ${gone} in its peers`)
  await writeFile(file, edited)
  const reloads = logLines(fly, RELOADED, id).length
  process.kill(navigatorPid(fly, id), 'SIGHUP')
  const deadline = Date.now() + 10_000
  while (logLines(fly, RELOADED, id).length === reloads) {
    if (Date.now() > deadline) throw new Error(`Machine ${id} did not reload its config:\n${fly.output.slice(-10).join('\n')}`)
    await sleep(20)
  }
}

/** The value of our cookie in a response's Set-Cookie headers, or null. */
export function cookieFrom (reply: Reply): string | null {
  for (const header of reply.headers['set-cookie'] ?? []) {
    const [pair] = header.split(';')
    const eq = pair.indexOf('=')
    if (pair.slice(0, eq).trim() === COOKIE) return pair.slice(eq + 1).trim()
  }
  return null
}

/** A client that keeps our cookie between requests, like a browser's jar. */
export class CookieJarClient {
  cookie: string | null = null
  constructor (readonly base: string) {}

  async get (path: string, options: Parameters<typeof request>[1] = {}): Promise<Reply> {
    const headers = { ...options.headers }
    if (this.cookie !== null) headers.cookie = `${COOKIE}=${this.cookie}`
    const reply = await request(this.base + path, { ...options, headers })
    this.cookie = cookieFrom(reply) ?? this.cookie
    return reply
  }
}
