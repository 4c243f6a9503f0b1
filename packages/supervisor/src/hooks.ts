import { statSync } from 'node:fs'
import type { HookConfig } from '@navigator/config'
import { HookFailedError } from './errors.js'
import type { SupervisorLogger } from './logger.js'
import { ProcessGroup, settlesWithin, spawnFailure } from './process-group.js'
import { substitute } from './substitute.js'

/** Time a hook past its timeout gets between SIGTERM and SIGKILL to its process group. */
export const HOOK_KILL_GRACE_MS = 1000
/** How far a file's modification time may lag the clock it is compared with. */
const MTIME_GRAIN_MS = 10
/** Output lines a failed hook's error carries (the last ones: where the reason usually is). */
export const HOOK_OUTPUT_LINES = 20

export interface HookRun {
  /** What the log lines carry as `hook`, e.g. `server.start` or `tenant.stop`. */
  name: string
  env: NodeJS.ProcessEnv
  cwd: string
  logger: SupervisorLogger
  /** Resolves `${name}` in the command and arguments; undefined = not defined. */
  lookup: (name: string) => string | undefined
  /** Reloads the configuration from a file, for `reload_config`; absent = `reload_config` is not followed. */
  reload?: ReloadConfig
  /**
   * A time (Date.now()) by which every hook of the run must be done: a hook is killed there even within its own
   * timeout, and one that would start after it does not start (hooks.server.stop, bounded by shutdown_timeout).
   */
  deadline?: number
}

export interface ReloadConfig {
  /** The file the running configuration came from, or null. */
  currentFile: () => string | null
  reload: (file: string) => Promise<void>
  /**
   * Start the reload without waiting for it (tenant hooks): a reload drains the requests in flight, and the request
   * that started the tenant is one of them, waiting for its hooks.
   */
  background?: boolean
}

export interface HookOutcome {
  ok: boolean
  /** Why it failed, in words an operator can act on; null when it succeeded. */
  reason: string | null
  /** Its last output lines (stdout and stderr, in order). */
  output: string[]
}

/**
 * Runs the hooks in order, each to its end (or its timeout), and resolves with the outcome of each: a failed hook is
 * logged and does not skip the next. A hook never throws here; runHooksOrFail does, for server.start.
 */
export async function runHooks (hooks: readonly HookConfig[], run: HookRun): Promise<HookOutcome[]> {
  const outcomes: HookOutcome[] = []
  for (const hook of hooks) outcomes.push(await runHook(hook, run))
  return outcomes
}

/** As runHooks, but stops at the first failure with a HookFailedError carrying the hook's output. */
export async function runHooksOrFail (hooks: readonly HookConfig[], run: HookRun): Promise<void> {
  for (const hook of hooks) {
    const outcome = await runHook(hook, run)
    if (!outcome.ok) {
      const output = outcome.output.length === 0 ? '' : '\n' + outcome.output.join('\n')
      throw new HookFailedError(run.name, `${outcome.reason ?? 'failed'}${output}`)
    }
  }
}

async function runHook (hook: HookConfig, run: HookRun): Promise<HookOutcome> {
  const { logger, name } = run
  const output: string[] = []
  let command = hook.command
  let group: ProcessGroup
  const startedAt = Date.now()
  const timeoutMs = timeoutWithin(hook.timeoutMs, startedAt, run.deadline)
  if (timeoutMs < 0) {
    const reason = 'not started: no time was left for it'
    logger.error({ hook: name, command, reason }, 'hook failed')
    return { ok: false, reason, output }
  }
  try {
    command = substitute(hook.command, run.lookup)
    const args = hook.args.map((arg) => substitute(arg, run.lookup))
    const log = logger.child({ hook: name })
    group = await ProcessGroup.spawn({
      command,
      args,
      cwd: run.cwd,
      env: run.env,
      onLine: (stream, line) => {
        output.push(line)
        if (output.length > HOOK_OUTPUT_LINES) output.shift()
        log.info({ stream }, line)
      }
    })
  } catch (err) {
    const reason = err instanceof Error && (err as NodeJS.ErrnoException).code === undefined ? err.message : spawnFailure(err, command, run.cwd).reason
    logger.error({ hook: name, command, reason }, 'hook could not start')
    return { ok: false, reason, output }
  }
  logger.info({ hook: name, command, pid: group.pid }, 'hook started')
  const reason = await finished(group, timeoutMs)
  if (reason !== null) {
    logger.error({ hook: name, command, reason }, 'hook failed')
    return { ok: false, reason, output }
  }
  logger.info({ hook: name, command, ms: Date.now() - startedAt }, 'hook done')
  if (hook.reloadConfig !== null && run.reload !== undefined) await reloadConfigAfter(hook.reloadConfig, startedAt, run.reload, logger.child({ hook: name }), 'hook')
  return { ok: true, reason: null, output }
}

/** A hook's own timeout (0 = none) cut short by the run's deadline; negative when the deadline has passed. */
function timeoutWithin (timeoutMs: number, now: number, deadline: number | undefined): number {
  if (deadline === undefined) return timeoutMs
  const left = deadline - now
  if (left <= 0) return -1
  return timeoutMs === 0 ? left : Math.min(timeoutMs, left)
}

/** Null once the hook exited with 0; else why not. A hook past its timeout loses its whole process group. */
async function finished (group: ProcessGroup, timeoutMs: number): Promise<string | null> {
  if (timeoutMs > 0 && !await settlesWithin(group.exited, timeoutMs)) {
    await group.terminate(HOOK_KILL_GRACE_MS)
    return `killed after its timeout of ${timeoutMs} ms`
  }
  const exit = await group.exited
  if (exit.code === 0) return null
  return exit.signal !== null ? `killed by ${exit.signal}` : `exited with status ${String(exit.code)}`
}

/**
 * `reload_config` of a hook or a CGI script that succeeded: as the Go Navigator, only when the file is another
 * than the running one, or was changed since `startedAt` (when it started); a missing file is a warning, never a
 * reload. `logger` says what ran (a binding such as `hook`). Never throws.
 */
export async function reloadConfigAfter (file: string, startedAt: number, reload: ReloadConfig, logger: SupervisorLogger, what: 'hook' | 'script'): Promise<void> {
  let modifiedAt: number
  try {
    modifiedAt = statSync(file).mtimeMs
  } catch {
    logger.warn({ file }, 'reload_config names a file that does not exist; not reloading')
    return
  }
  // File times come from a coarser clock than Date.now() (a kernel tick): a change right at the start counts.
  if (reload.currentFile() === file && modifiedAt < startedAt - MTIME_GRAIN_MS) {
    logger.debug({ file }, 'configuration unchanged; not reloading')
    return
  }
  const reloading = reload.reload(file).then(
    () => { logger.info({ file }, `configuration reloaded after the ${what}`) },
    (err: unknown) => { logger.error({ file, err }, `reloading the configuration after the ${what} failed; the old one stays`) }
  )
  if (reload.background !== true) await reloading
}
