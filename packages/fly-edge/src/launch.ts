import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { NAV_FLY_EDGE_INVALID_OPTION, NAV_FLY_EDGE_LAUNCH_FAILED, NAV_FLY_EDGE_UNKNOWN_MACHINE } from './errors.js'
import { checkMachineConfig, machineConfigText, planPorts } from './machine-config.js'
import { DEFAULT_REGION, isValidAppName, type MachineLauncher, type MachineSpec } from './machines.js'

export const DEFAULT_STARTUP_TIMEOUT_MS = 30_000
export const DEFAULT_STOP_GRACE_MS = 10_000
/** The `navigator` bin of the installed @navigator/server (from a clone, a release's tarballs or the registry). */
export const DEFAULT_NAVIGATOR_BIN = navigatorBin()
// Below Linux's ephemeral range (32768+), where port-0 listeners of other tests land.
export const FIRST_BLOCK_PORT = 20_000
const EPHEMERAL_PORTS = 32_768

function navigatorBin (): string {
  const manifest = createRequire(import.meta.url).resolve('@navigator/server/package.json')
  const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin: { navigator: string } }
  return join(dirname(manifest), bin.navigator)
}

export interface LaunchOptions {
  /** The Navigator config every Machine runs, as it is: each Machine gets a copy with its own ports. */
  config: string
  count: number
  app: string
  /** Regions given to the Machines in turn; default [DEFAULT_REGION]. */
  regions?: string[]
  /**
   * First port of the first Machine's block; default a free block. `count * (blockSize + 1) + 1` ports from there are
   * used (`blockSize` is PORTS_PER_MACHINE unless the config's tenants need more): the Machines' blocks, then one
   * private address port per Machine, then the Flycast port.
   */
  basePort?: number
  /** Added to every Machine's environment. */
  env?: NodeJS.ProcessEnv
  /**
   * Folder of the Machines' data folders (`<dataDir>/<id>`, each Machine's NAVIGATOR_DATA); default a new temporary
   * folder, removed by stop(). A given folder is kept.
   */
  dataDir?: string
  /** Machine IDs to use; default random 14-hex IDs like Fly's. */
  ids?: string[]
  /** Path of the navigator CLI script; default DEFAULT_NAVIGATOR_BIN, the bin of the installed @navigator/server. */
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
  /** Each Machine's own data folder, its NAVIGATOR_DATA. */
  dataDirs: Record<string, string>
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
  const choices = Math.floor((EPHEMERAL_PORTS - FIRST_BLOCK_PORT - size) / 10)
  for (let tries = 0; tries < 50; tries++) {
    const base = FIRST_BLOCK_PORT + Math.floor(Math.random() * choices) * 10
    let free = true
    for (let port = base; port < base + size && free; port++) free = await portFree(port)
    if (free) return base
  }
  throw new NAV_FLY_EDGE_LAUNCH_FAILED('(any)', 'no free block of ports found')
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

/** Each Machine's data folder under `root` (created, or a new temporary one), and how to remove what was created. */
export async function dataFolders (ids: string[], app: string, root: string | undefined): Promise<{ dirs: Record<string, string>, remove: () => Promise<void> }> {
  const parent = root === undefined ? await mkdtemp(join(tmpdir(), `fly-edge-${app}-`)) : resolve(root)
  const dirs = Object.fromEntries(ids.map((id) => [id, join(parent, id)]))
  await Promise.all(Object.values(dirs).map((dir) => mkdir(dir, { recursive: true })))
  return { dirs, remove: async () => { if (root === undefined) await rm(parent, { recursive: true, force: true }) } }
}

/** Where a set of Machines listen: their blocks from `firstPort`, then one private address port each, then Flycast. */
export function machineLayout (ids: string[], regions: string[], app: string, firstPort: number, blockSize: number): {
  machines: MachineSpec[]
  peers: Record<string, string>
  flycastPort: number
  flycastUrl: string
} {
  const firstPrivatePort = firstPort + ids.length * blockSize
  const flycastPort = firstPrivatePort + ids.length
  const machines: MachineSpec[] = ids.map((id, i) => ({
    id,
    region: regions[i % regions.length],
    url: `http://127.0.0.1:${firstPort + i * blockSize}`,
    app,
    privatePort: firstPrivatePort + i
  }))
  // Peers dial each other's private addresses, which the edge closes while a Machine is stopped or suspended.
  const peers = Object.fromEntries(machines.map((m) => [m.id, `http://127.0.0.1:${m.privatePort as number}`]))
  return { machines, peers, flycastPort, flycastUrl: `http://127.0.0.1:${flycastPort}` }
}

/** A Machine's environment: the edge's, then `extra`, then Fly's variables, NAVIGATOR_PORT and NAVIGATOR_DATA. */
export function machineEnv (machine: MachineSpec, app: string, port: number, dataDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...extra,
    FLY_MACHINE_ID: machine.id,
    FLY_ALLOC_ID: machine.id,
    FLY_APP_NAME: app,
    FLY_REGION: machine.region,
    NAVIGATOR_PORT: String(port),
    NAVIGATOR_DATA: dataDir
  }
}

/**
 * Spawn `count` real navigator processes, each a Machine with its own FLY_MACHINE_ID, FLY_APP_NAME, FLY_REGION, port
 * block, data folder (NAVIGATOR_DATA) and generated config (written beside the base config so that its relative
 * paths keep working, and removed by stop()). After the Machines' blocks come one port per Machine for its private
 * address on the edge, then the app's Flycast port: the configs name those (`peers`, `flycast_url`), so the edge must
 * be given the same ports (`machines` carry `privatePort`; pass `flycastPorts`).
 */
export async function launchMachines (options: LaunchOptions): Promise<LaunchedMachines> {
  if (!isValidAppName(options.app)) throw new NAV_FLY_EDGE_INVALID_OPTION('app must be 1-63 characters of a-z, 0-9 and -')
  if (!Number.isInteger(options.count) || options.count < 1) throw new NAV_FLY_EDGE_INVALID_OPTION('count must be an integer >= 1')
  const configPath = resolve(options.config)
  const base = await readFile(configPath, 'utf8')
  const plan = planPorts(base)
  const regions = options.regions !== undefined && options.regions.length > 0 ? options.regions : [DEFAULT_REGION]
  const ids = options.ids ?? Array.from({ length: options.count }, randomMachineId)
  if (ids.length !== options.count) throw new NAV_FLY_EDGE_INVALID_OPTION('ids must have count entries')
  const firstPort = options.basePort ?? await freePortBlock(options.count * (plan.blockSize + 1) + 1)
  const { machines, peers, flycastPort, flycastUrl } = machineLayout(ids, regions, options.app, firstPort, plan.blockSize)
  const data = await dataFolders(ids, options.app, options.dataDir)
  const processes = new Map<string, Process>()
  const configFiles: Record<string, string> = {}
  const removeFiles = async (): Promise<void> => {
    await Promise.all(Object.values(configFiles).map((file) => rm(file, { force: true })))
    await data.remove()
  }
  try {
    for (const [i, machine] of machines.entries()) {
      const port = firstPort + i * plan.blockSize
      const env = machineEnv(machine, options.app, port, data.dirs[machine.id], options.env)
      const configFile = join(dirname(configPath), `.fly-edge-${machine.id}-${basename(configPath)}`)
      const text = machineConfigText(base, port, peers, { flycastUrl, env })
      checkMachineConfig({ id: machine.id, port, env }, base, text, configPath, plan)
      await writeFile(configFile, text)
      configFiles[machine.id] = configFile
      processes.set(machine.id, { id: machine.id, port, configFile, env, child: null, exited: Promise.resolve(), output: [], stopping: false })
    }
  } catch (err) {
    await removeFiles()
    throw err
  }

  const launcher = processLauncher(processes, {
    navigator: options.navigator ?? DEFAULT_NAVIGATOR_BIN,
    startupTimeoutMs: options.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS,
    stopGraceMs: options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
    onOutput: options.onOutput
  })
  const stopAll = async (): Promise<void> => {
    await Promise.all(ids.map((id) => launcher.stop(id)))
    await removeFiles()
  }
  try {
    await Promise.all(ids.map((id) => launcher.start(id)))
  } catch (err) {
    await stopAll()
    throw err
  }
  return { machines, launcher, flycastPorts: { [options.app]: flycastPort }, flycastUrl, configFiles, dataDirs: data.dirs, stop: stopAll }
}
