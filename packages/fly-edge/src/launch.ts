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

export interface LaunchOptions {
  /** The Navigator config every Machine runs; it must listen on `${NAVIGATOR_PORT}`. */
  config: string
  count: number
  app: string
  /** Regions given to the Machines in turn; default [DEFAULT_REGION]. */
  regions?: string[]
  /** First port of the first Machine's block; default a free block. */
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
  machines: MachineSpec[]
  launcher: MachineLauncher
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

/**
 * The config text one Machine runs: `${NAVIGATOR_PORT}` and `${NAVIGATOR_PORT+N}` filled in,
 * and `peers` (every Machine's address) added to routes.fly.sticky_sessions when present.
 */
export function machineConfigText (base: string, port: number, peers: Record<string, string>): string {
  let text = base.replace(PORT_REFERENCE, (_ref, offset: string | undefined) => String(port + Number(offset ?? 0)))
  const block = STICKY_BLOCK.exec(text)
  if (block !== null) {
    const lineEnd = block.index + block[0].length
    const following = /\n([ \t]*)\S/.exec(text.slice(lineEnd))
    const childIndent = following !== null && following[1].length > block[1].length ? following[1] : `${block[1]}  `
    text = `${text.slice(0, lineEnd)}\n${childIndent}peers: ${JSON.stringify(peers)}${text.slice(lineEnd)}`
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

/**
 * Spawn `count` real navigator processes, each a Machine with its own FLY_MACHINE_ID,
 * FLY_APP_NAME, FLY_REGION, port block and generated config (written beside the base
 * config so that its relative paths keep working, and removed by stop()).
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
  const firstPort = options.basePort ?? await freePortBlock(options.count * PORTS_PER_MACHINE)
  const navigator = options.navigator ?? DEFAULT_NAVIGATOR_BIN
  const startupTimeoutMs = options.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS
  const stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS

  const machines: MachineSpec[] = ids.map((id, i) => ({
    id, region: regions[i % regions.length], url: `http://127.0.0.1:${firstPort + i * PORTS_PER_MACHINE}`, app: options.app
  }))
  const peers = Object.fromEntries(machines.map((m) => [m.id, m.url]))
  const processes = new Map<string, Process>()
  const configFiles: Record<string, string> = {}
  for (const [i, machine] of machines.entries()) {
    const port = firstPort + i * PORTS_PER_MACHINE
    const configFile = join(dirname(configPath), `.fly-edge-${machine.id}-${basename(configPath)}`)
    await writeFile(configFile, machineConfigText(base, port, peers))
    configFiles[machine.id] = configFile
    processes.set(machine.id, {
      id: machine.id,
      port,
      configFile,
      env: {
        ...process.env,
        ...options.env,
        FLY_MACHINE_ID: machine.id,
        FLY_ALLOC_ID: machine.id,
        FLY_APP_NAME: options.app,
        FLY_REGION: machine.region,
        NAVIGATOR_PORT: String(port)
      },
      child: null,
      exited: Promise.resolve(),
      output: []
    })
  }

  const known = (id: string): Process => {
    const proc = processes.get(id)
    if (proc === undefined) throw new NAV_FLY_EDGE_UNKNOWN_MACHINE(id)
    return proc
  }

  const start = async (id: string): Promise<void> => {
    const proc = known(id)
    if (proc.child !== null) return
    const child = spawn(process.execPath, [navigator, proc.configFile], {
      env: proc.env, detached: true, stdio: ['ignore', 'pipe', 'pipe']
    })
    proc.child = child
    proc.output = []
    proc.exited = new Promise((resolve) => child.once('exit', () => {
      if (proc.child === child) proc.child = null
      resolve()
    }))
    child.once('error', () => {})
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        proc.output.push(line)
        if (proc.output.length > 40) proc.output.shift()
        options.onOutput?.(id, line)
      })
    }
    const result = await waitForPort(proc.port, proc.exited, startupTimeoutMs)
    if (result !== 'ready') {
      await stop(id)
      throw new NAV_FLY_EDGE_LAUNCH_FAILED(id, `${result === 'exited' ? 'it exited' : 'its port did not answer in time'}\n${proc.output.join('\n')}`)
    }
  }

  const signalGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
    try {
      process.kill(-(child.pid as number), signal)
    } catch {
      // The group is gone already.
    }
  }

  const stop = async (id: string): Promise<void> => {
    const proc = known(id)
    const child = proc.child
    if (child === null) return
    child.kill('SIGTERM')
    signalGroup(child, 'SIGCONT')
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, stopGraceMs) })
    await Promise.race([proc.exited, grace])
    clearTimeout(timer)
    // Whatever navigator left behind in its process group goes too.
    signalGroup(child, 'SIGKILL')
    await proc.exited
  }

  const launcher: MachineLauncher = {
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
    }
  }

  const stopAll = async (): Promise<void> => {
    await Promise.all([...processes.keys()].map((id) => stop(id)))
    await Promise.all(Object.values(configFiles).map((file) => rm(file, { force: true })))
  }

  try {
    await Promise.all(ids.map((id) => start(id)))
  } catch (err) {
    await stopAll()
    throw err
  }
  return { machines, launcher, configFiles, stop: stopAll }
}
