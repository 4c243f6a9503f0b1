import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { basename, dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { NAV_FLY_EDGE_INVALID_OPTION, NAV_FLY_EDGE_LAUNCH_FAILED, NAV_FLY_EDGE_UNKNOWN_MACHINE } from './errors.js'
import { DEFAULT_REGION, isValidAppName, type MachineLauncher, type MachineSpec } from './machines.js'

/** Ports reserved per Machine: `${NAVIGATOR_PORT}` and `${NAVIGATOR_PORT+1}` to `${NAVIGATOR_PORT+9}`. */
export const PORTS_PER_MACHINE = 10
export const DEFAULT_STARTUP_TIMEOUT_MS = 30_000
export const DEFAULT_STOP_GRACE_MS = 10_000
export const DEFAULT_NAVIGATOR_BIN = fileURLToPath(new URL('../../server/bin/navigator.js', import.meta.url))
const PORT_REFERENCE = /\$\{NAVIGATOR_PORT(?:\+(\d))?\}/g
const STICKY_BLOCK = /^([ \t]*)sticky_sessions:[ \t]*(#.*)?$/m
const DIRECT_PROXY_FLYCAST = /^[ \t]*direct_proxy:[ \t]*["']?flycast["']?[ \t]*(#.*)?$/m
const FLYCAST_URL_KEY = /^[ \t]*flycast_url:/m

export interface LaunchOptions {
  /** The Navigator config every Machine runs; it must listen on `${NAVIGATOR_PORT}`. */
  config: string
  count: number
  app: string
  /** Regions given to the Machines in turn; default [DEFAULT_REGION]. */
  regions?: string[]
  /**
   * First port of the first Machine's block; default a free block. `count * (PORTS_PER_MACHINE + 1) + 1` ports from
   * there are used: the Machines' blocks, then one private address port per Machine, then the Flycast port.
   */
  basePort?: number
  /** Added to every Machine's environment. */
  env?: NodeJS.ProcessEnv
  /** Machine IDs to use; default random 14-hex IDs like Fly's. */
  ids?: string[]
  /** Path of the navigator CLI script; default this repository's packages/server/bin/navigator.js. */
  navigator?: string
  startupTimeoutMs?: number
  stopGraceMs?: number
  /** Every output line of every Machine (default: kept only for error messages). */
  onOutput?: (machineId: string, line: string) => void
}

export interface LaunchedMachines {
  /** Each with its `privatePort`: the edge opens the Machine's private address there. */
  machines: MachineSpec[]
  launcher: MachineLauncher
  /** `{ [app]: port }` of the app's Flycast listener: pass it to the edge as `flycastPorts`. */
  flycastPorts: Record<string, number>
  /** The Flycast origin written as `flycast_url` into configs that set `direct_proxy: flycast`. */
  flycastUrl: string
  /** The generated per-Machine config files. */
  configFiles: Record<string, string>
  /** Stop every process and remove the generated files. */
  stop (): Promise<void>
}

interface Process {
  id: string
  port: number
  configFile: string
  env: NodeJS.ProcessEnv
  child: ChildProcess | null
  exited: Promise<void>
  output: string[]
  /** The launcher itself is stopping it: its exit is not news. */
  stopping: boolean
}

export function randomMachineId (): string {
  return randomBytes(7).toString('hex')
}

function portFree (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function freePortBlock (size: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    // Below Linux's ephemeral range (32768+), where port-0 listeners of other tests land.
    const base = 20_000 + Math.floor(Math.random() * 1_200) * 10
    let free = true
    for (let port = base; port < base + size && free; port++) free = await portFree(port)
    if (free) return base
  }
  throw new NAV_FLY_EDGE_LAUNCH_FAILED('(any)', 'no free block of ports found')
}

/** The lines of a YAML block: those after its header line that are blank or indented deeper than it. */
function blockBody (text: string, start: number, indent: number): string {
  const lines = text.slice(start).split('\n').slice(1)
  const end = lines.findIndex((line) => line.trim() !== '' && !line.trimStart().startsWith('#') && line.length - line.trimStart().length <= indent)
  return (end === -1 ? lines : lines.slice(0, end)).join('\n')
}

/**
 * The config text one Machine runs: `${NAVIGATOR_PORT}` and `${NAVIGATOR_PORT+N}` filled in, and, under
 * routes.fly.sticky_sessions when present, `peers` (every Machine's address) and, when the block says
 * `direct_proxy: flycast` without a `flycast_url`, `flycast_url` (the edge's Flycast origin).
 */
export function machineConfigText (base: string, port: number, peers: Record<string, string>, options: { flycastUrl?: string } = {}): string {
  let text = base.replace(PORT_REFERENCE, (_ref, offset: string | undefined) => String(port + Number(offset ?? 0)))
  const block = STICKY_BLOCK.exec(text)
  if (block !== null) {
    const lineEnd = block.index + block[0].length
    const following = /\n([ \t]*)\S/.exec(text.slice(lineEnd))
    const childIndent = following !== null && following[1].length > block[1].length ? following[1] : `${block[1]}  `
    const body = blockBody(text, block.index, block[1].length)
    let added = `\n${childIndent}peers: ${JSON.stringify(peers)}`
    if (options.flycastUrl !== undefined && DIRECT_PROXY_FLYCAST.test(body) && !FLYCAST_URL_KEY.test(body)) {
      added += `\n${childIndent}flycast_url: ${JSON.stringify(options.flycastUrl)}`
    }
    text = `${text.slice(0, lineEnd)}${added}${text.slice(lineEnd)}`
  }
  return text
}

function waitForPort (port: number, exited: Promise<void>, timeoutMs: number): Promise<'ready' | 'exited' | 'timeout'> {
  return new Promise((resolve) => {
    let done = false
    const finish = (result: 'ready' | 'exited' | 'timeout'): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(result)
    }
    const timer = setTimeout(() => finish('timeout'), timeoutMs)
    void exited.then(() => finish('exited'))
    const probe = (): void => {
      if (done) return
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); finish('ready') })
      socket.once('error', () => { socket.destroy(); setTimeout(probe, 50) })
    }
    probe()
  })
}

interface ProcessOptions {
  navigator: string
  startupTimeoutMs: number
  stopGraceMs: number
  onOutput?: (machineId: string, line: string) => void
}

function signalGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-(child.pid as number), signal)
  } catch {
    // The group is gone already.
  }
}

/**
 * Starts, stops, suspends (SIGSTOP of the process group) and resumes (SIGCONT) the Machines' processes, and tells
 * its watchers about a process that exits without being asked to.
 */
function processLauncher (processes: Map<string, Process>, options: ProcessOptions): MachineLauncher {
  const exitWatchers = new Set<(id: string) => void>()
  const known = (id: string): Process => {
    const proc = processes.get(id)
    if (proc === undefined) throw new NAV_FLY_EDGE_UNKNOWN_MACHINE(id)
    return proc
  }

  const start = async (id: string): Promise<void> => {
    const proc = known(id)
    if (proc.child !== null) return
    const child = spawn(process.execPath, [options.navigator, proc.configFile], {
      env: proc.env, detached: true, stdio: ['ignore', 'pipe', 'pipe']
    })
    proc.child = child
    proc.output = []
    proc.exited = new Promise((resolve) => child.once('exit', () => {
      const unasked = proc.child === child && !proc.stopping
      if (proc.child === child) proc.child = null
      resolve()
      if (unasked) for (const watcher of exitWatchers) watcher(id)
    }))
    child.once('error', () => {})
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        proc.output.push(line)
        if (proc.output.length > 40) proc.output.shift()
        options.onOutput?.(id, line)
      })
    }
    const result = await waitForPort(proc.port, proc.exited, options.startupTimeoutMs)
    if (result !== 'ready') {
      await stop(id)
      throw new NAV_FLY_EDGE_LAUNCH_FAILED(id, `${result === 'exited' ? 'it exited' : 'its port did not answer in time'}\n${proc.output.join('\n')}`)
    }
  }

  const stop = async (id: string): Promise<void> => {
    const proc = known(id)
    const child = proc.child
    if (child === null) return
    proc.stopping = true
    child.kill('SIGTERM')
    signalGroup(child, 'SIGCONT')
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, options.stopGraceMs) })
    await Promise.race([proc.exited, grace])
    clearTimeout(timer)
    // Whatever navigator left behind in its process group goes too.
    signalGroup(child, 'SIGKILL')
    await proc.exited
    proc.stopping = false
  }

  return {
    start,
    stop,
    suspend: async (id) => {
      const child = known(id).child
      if (child !== null) signalGroup(child, 'SIGSTOP')
    },
    resume: async (id) => {
      const proc = known(id)
      if (proc.child === null) {
        await start(id)
        return
      }
      signalGroup(proc.child, 'SIGCONT')
    },
    watchExits: (watcher) => {
      exitWatchers.add(watcher)
      return () => { exitWatchers.delete(watcher) }
    }
  }
}

/**
 * Spawn `count` real navigator processes, each a Machine with its own FLY_MACHINE_ID, FLY_APP_NAME, FLY_REGION, port
 * block and generated config (written beside the base config so that its relative paths keep working, and removed by
 * stop()). After the Machines' blocks come one port per Machine for its private address on the edge, then the app's
 * Flycast port: the configs name those (`peers`, `flycast_url`), so the edge must be given the same ports
 * (`machines` carry `privatePort`; pass `flycastPorts`).
 */
export async function launchMachines (options: LaunchOptions): Promise<LaunchedMachines> {
  if (!isValidAppName(options.app)) throw new NAV_FLY_EDGE_INVALID_OPTION('app must be 1-63 characters of a-z, 0-9 and -')
  if (!Number.isInteger(options.count) || options.count < 1) throw new NAV_FLY_EDGE_INVALID_OPTION('count must be an integer >= 1')
  const configPath = resolve(options.config)
  const base = await readFile(configPath, 'utf8')
  if (!base.includes('${NAVIGATOR_PORT}')) {
    throw new NAV_FLY_EDGE_INVALID_OPTION(`${configPath} must listen on \${NAVIGATOR_PORT} (server.listen)`)
  }
  const regions = options.regions !== undefined && options.regions.length > 0 ? options.regions : [DEFAULT_REGION]
  const ids = options.ids ?? Array.from({ length: options.count }, randomMachineId)
  if (ids.length !== options.count) throw new NAV_FLY_EDGE_INVALID_OPTION('ids must have count entries')
  const firstPort = options.basePort ?? await freePortBlock(options.count * (PORTS_PER_MACHINE + 1) + 1)
  const firstPrivatePort = firstPort + options.count * PORTS_PER_MACHINE
  const flycastPort = firstPrivatePort + options.count
  const flycastUrl = `http://127.0.0.1:${flycastPort}`

  const machines: MachineSpec[] = ids.map((id, i) => ({
    id,
    region: regions[i % regions.length],
    url: `http://127.0.0.1:${firstPort + i * PORTS_PER_MACHINE}`,
    app: options.app,
    privatePort: firstPrivatePort + i
  }))
  // Peers dial each other's private addresses, which the edge closes while a Machine is stopped or suspended.
  const peers = Object.fromEntries(machines.map((m) => [m.id, `http://127.0.0.1:${m.privatePort as number}`]))
  const processes = new Map<string, Process>()
  const configFiles: Record<string, string> = {}
  for (const [i, machine] of machines.entries()) {
    const port = firstPort + i * PORTS_PER_MACHINE
    const configFile = join(dirname(configPath), `.fly-edge-${machine.id}-${basename(configPath)}`)
    await writeFile(configFile, machineConfigText(base, port, peers, { flycastUrl }))
    configFiles[machine.id] = configFile
    const env = {
      ...process.env,
      ...options.env,
      FLY_MACHINE_ID: machine.id,
      FLY_ALLOC_ID: machine.id,
      FLY_APP_NAME: options.app,
      FLY_REGION: machine.region,
      NAVIGATOR_PORT: String(port)
    }
    processes.set(machine.id, { id: machine.id, port, configFile, env, child: null, exited: Promise.resolve(), output: [], stopping: false })
  }

  const launcher = processLauncher(processes, {
    navigator: options.navigator ?? DEFAULT_NAVIGATOR_BIN,
    startupTimeoutMs: options.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS,
    stopGraceMs: options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
    onOutput: options.onOutput
  })
  const stopAll = async (): Promise<void> => {
    await Promise.all(ids.map((id) => launcher.stop(id)))
    await Promise.all(Object.values(configFiles).map((file) => rm(file, { force: true })))
  }
  try {
    await Promise.all(ids.map((id) => launcher.start(id)))
  } catch (err) {
    await stopAll()
    throw err
  }
  return { machines, launcher, flycastPorts: { [options.app]: flycastPort }, flycastUrl, configFiles, stop: stopAll }
}
