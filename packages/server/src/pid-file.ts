import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { nonEmpty } from './identity.js'

/** Where a running Navigator writes its process id, as the Go Navigator does; NAVIGATOR_PID_FILE changes it. */
export const DEFAULT_PID_FILE = '/tmp/navigator.pid'
/** `navigator -s <action>`: the signal each action sends to the running Navigator. */
export const CONTROL_SIGNALS = { reload: 'SIGHUP', stop: 'SIGTERM' } as const satisfies Record<string, NodeJS.Signals>
export type ControlAction = keyof typeof CONTROL_SIGNALS
/** Exit status of `navigator -s` when no Navigator runs (no pid file, a stale one, or a process we may not signal). */
export const EXIT_NOT_RUNNING = 1

export function pidFilePath (env: NodeJS.ProcessEnv = process.env): string {
  return nonEmpty(env.NAVIGATOR_PID_FILE) ?? DEFAULT_PID_FILE
}

/**
 * Writes this process's id to `file` and removes the file when the process exits, unless another Navigator has
 * written its own id there since (two on one host: the later one owns the file). Returns a warning, or null.
 */
export function writePidFile (file: string): string | null {
  try {
    writeFileSync(file, `${process.pid}\n`)
  } catch (err) {
    return `cannot write the pid file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): navigator -s will not find this Navigator`
  }
  process.on('exit', () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file)
    } catch {}
  })
  return null
}

/**
 * Linux: whether process `pid` started after `file` was last written, by its start time (field 22 of
 * /proc/<pid>/stat, in clock ticks since boot; 100 a second on Linux). Such a process is not the one that wrote
 * the file but a later one that got the same id: signalling it would hit a stranger. False where it cannot be read.
 */
function startedAfter (pid: number, file: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    const bootSeconds = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))?.[1])
    const startedMs = (bootSeconds + startTicks / 100) * 1000
    // One second of slack: btime is whole seconds.
    return Number.isFinite(startedMs) && startedMs > statSync(file).mtimeMs + 1000
  } catch {
    return false
  }
}

/**
 * Sends the action's signal to the Navigator whose id is in `file`. Returns what to print: on success a line for
 * stdout, else an error for stderr (and exit EXIT_NOT_RUNNING).
 */
export function signalRunning (file: string, action: ControlAction): { ok: boolean, message: string } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { ok: false, message: `no Navigator is running: there is no pid file ${file}` }
    return { ok: false, message: `cannot read the pid file ${file} (${code ?? (err as Error).message})` }
  }
  const pid = Number(text.trim())
  if (!Number.isInteger(pid) || pid <= 0) return { ok: false, message: `the pid file ${file} holds no process id (${JSON.stringify(text.trim())})` }
  const stale = `no Navigator is running: the pid file ${file} is stale (process ${pid} is gone); remove it`
  if (startedAfter(pid, file)) return { ok: false, message: `no Navigator is running: the pid file ${file} is stale (process ${pid} started after it was written, so it is not that Navigator); remove it` }
  const signal = CONTROL_SIGNALS[action]
  try {
    process.kill(pid, signal)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ESRCH') return { ok: false, message: stale }
    return { ok: false, message: `cannot signal process ${pid} from ${file} (${code ?? (err as Error).message}): run as the user that runs Navigator` }
  }
  return { ok: true, message: `sent ${signal} to navigator (pid ${pid})` }
}
