import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'

export interface GroupExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface SpawnGroupOptions {
  command: string
  args: string[]
  cwd: string
  env: NodeJS.ProcessEnv
  /** Run as this user and group (Navigator must be root). */
  uid?: number
  gid?: number
  /** Called once per line the child writes, without the line break. */
  onLine: (stream: 'stdout' | 'stderr', line: string) => void
}

const GROUP_POLL_MS = 25
const KILL_WAIT_MS = 2000

/** Process groups we started and have not seen disappear: the exit safety net kills whatever is left. */
const liveGroups = new Set<number>()
let safetyNetInstalled = false

function installSafetyNet (): void {
  if (safetyNetInstalled) return
  safetyNetInstalled = true
  process.on('exit', () => {
    for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL')
  })
}

function signalGroup (pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * True while any process of the group is alive. A zombie (exited, not yet reaped) does not count:
 * where PID 1 does not reap orphans, an orphaned grandchild stays a zombie forever, and a group
 * made only of zombies is gone for every practical purpose.
 */
export function groupAlive (pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false
  if (process.platform !== 'linux') return true
  return groupMembers(pgid, 1)?.length !== 0
}

/**
 * Linux: the live (not zombie) processes of group `pgid`, at most `limit` of them; null where /proc cannot be read.
 */
export function groupMembers (pgid: number, limit = Infinity): number[] | null {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return null
  }
  const members: number[] = []
  for (const entry of entries) {
    const first = entry.charCodeAt(0)
    if (first < 48 || first > 57) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1')
    } catch {
      continue
    }
    // Fields after the command name (which may contain spaces) are: state ppid pgrp ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') {
      members.push(Number(entry))
      if (members.length >= limit) break
    }
  }
  return members
}

/** Resolves true once the group is gone, false when `timeoutMs` passes first. */
async function waitForGroupGone (pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false
    await delay(GROUP_POLL_MS)
  }
  return true
}

/**
 * A child process spawned as the leader of its own process group (`detached: true`), so that
 * stopping it reaches every process it started too.
 */
export class ProcessGroup {
  /** Set once stop was asked for: an exit after that is expected. */
  terminating = false
  exitInfo: GroupExit | null = null
  readonly exited: Promise<GroupExit>
  private termination: Promise<GroupExit> | null = null

  private constructor (private readonly child: ChildProcess, readonly pid: number) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        resolve(this.exitInfo)
      })
    })
  }

  /** Spawns the process; rejects with the spawn error (missing command, missing working directory, ...). */
  static spawn (options: SpawnGroupOptions): Promise<ProcessGroup> {
    installSafetyNet()
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      uid: options.uid,
      gid: options.gid,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    return new Promise((resolve, reject) => {
      child.once('error', reject)
      child.once('spawn', () => {
        child.removeListener('error', reject)
        // A later error (a failed kill) must not crash Navigator; exits are observed through 'exit'.
        child.on('error', () => {})
        const pid = child.pid as number
        liveGroups.add(pid)
        const group = new ProcessGroup(child, pid)
        forwardLines(child, 'stdout', options.onLine)
        forwardLines(child, 'stderr', options.onLine)
        resolve(group)
      })
    })
  }

  /**
   * SIGTERM to the whole group, then SIGKILL to the group when anything of it is still alive after
   * `graceMs`. Resolves with the leader's exit once the group is gone. Safe to call more than once.
   */
  terminate (graceMs: number): Promise<GroupExit> {
    this.terminating = true
    this.termination ??= this.runTermination(graceMs)
    return this.termination
  }

  /** After the leader died on its own: kill whatever it left behind in its group. */
  killRemaining (): void {
    signalGroup(this.pid, 'SIGKILL')
    if (!groupAlive(this.pid)) liveGroups.delete(this.pid)
  }

  private async runTermination (graceMs: number): Promise<GroupExit> {
    const deadline = Date.now() + graceMs
    signalGroup(this.pid, 'SIGTERM')
    const graceful = await settlesWithin(this.exited, graceMs) &&
      await waitForGroupGone(this.pid, deadline - Date.now())
    if (!graceful) {
      signalGroup(this.pid, 'SIGKILL')
      await settlesWithin(this.exited, KILL_WAIT_MS)
      await waitForGroupGone(this.pid, KILL_WAIT_MS)
    }
    liveGroups.delete(this.pid)
    return this.exitInfo ?? { code: null, signal: 'SIGKILL' }
  }
}

/** Resolves true when `promise` settles within `ms`, false otherwise; leaves no timer behind. */
export function settlesWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms, false)
    promise.then(() => {
      clearTimeout(timer)
      resolve(true)
    }, () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

function forwardLines (
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  onLine: (stream: 'stdout' | 'stderr', line: string) => void
): void {
  const source = child[stream]
  if (source === null) return
  const lines = createInterface({ input: source, crlfDelay: Infinity })
  lines.on('line', (line) => onLine(stream, line))
}

/** Spawn errors that come back on every attempt until the files or the configuration change. */
const PERMANENT_SPAWN_ERRORS = new Set(['ENOENT', 'EACCES', 'ENOTDIR', 'EISDIR', 'ENOEXEC'])

/**
 * Why a spawn failed, in words an operator can act on (no stack trace), and whether retrying can help. Node reports
 * a missing working directory as the command's ENOENT, so the directory is looked at first.
 */
export function spawnFailure (err: unknown, command: string, cwd: string): { reason: string, permanent: boolean } {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? ''
  if (!PERMANENT_SPAWN_ERRORS.has(code)) return { reason: err instanceof Error ? err.message : String(err), permanent: false }
  let directory = false
  try {
    directory = statSync(cwd).isDirectory()
  } catch {}
  if (!directory) return { reason: `its working directory ${cwd} does not exist`, permanent: true }
  if (code === 'ENOENT') return { reason: `the command ${command} was not found (in ${cwd}, or on PATH)`, permanent: true }
  return { reason: `the command ${command} cannot be run (${code})`, permanent: true }
}
