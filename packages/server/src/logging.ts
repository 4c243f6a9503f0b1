import { mkdirSync, openSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { LogController } from 'fastify'
import type { FastifyBaseLogger } from 'fastify'
import { InvalidLogLevelError } from './errors.js'
import { nonEmpty } from './identity.js'
import { NAVIGATOR_LOG_APP } from '@navigator/config'
import { TextLines, textLine, type LineSink } from './text-log.js'

/** Level used when LOG_LEVEL is not set. */
export const DEFAULT_LOG_LEVEL = 'info'
/** Values LOG_LEVEL may take (pino's levels). */
export const LOG_LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']
/** Log lines wait at most this long before they are written (a SIGKILL loses at most this much). */
export const LOG_FLUSH_INTERVAL_MS = 10

/** Whether per-request lines ("request completed", the sticky decisions) are written. */
export function logsRequests (log: FastifyBaseLogger): boolean {
  return log.level === 'debug' || log.level === 'trace'
}

/**
 * Fastify's options for logging. The hot path stays quiet: Fastify writes no "incoming request" / "request
 * completed" lines (the server writes its own at debug, for both of the pipeline's paths), and a request's logger
 * is the server's own, so a step logs the same line whichever path runs it.
 */
export function fastifyLogging (logger: { logger: object } | { loggerInstance: FastifyBaseLogger }): object {
  return {
    ...logger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (log: FastifyBaseLogger) => log
  }
}

/** `logging.format`: JSON lines (the default), or text lines (`<time> <LEVEL> <message> key=value ...`). */
export type LogFormat = 'json' | 'text'

/** `logging`: the format, and a file the lines go to besides stdout (`{{app}}` in it: one file per process). */
export interface LogSettings {
  format: LogFormat
  file: string | null
}

/** What `{{app}}` in `logging.file` stands for. */
export const APP_PLACEHOLDER = '{{app}}'

/**
 * pino's options from LOG_LEVEL and `logging`: JSON or text lines on stdout (readable colour lines for a person at a
 * terminal), and the same lines in `logging.file` when it is set. No `pid` or `hostname` on every line: a child's pid
 * and a DNS name logged as `hostname` would repeat those keys in one line, and on Fly the log shipper says which
 * Machine a line came from. Throws when the log file cannot be opened.
 */
export function loggerOptions (env: NodeJS.ProcessEnv, logging: LogSettings = { format: 'json', file: null }): object {
  const level = nonEmpty(env.LOG_LEVEL)?.toLowerCase() ?? DEFAULT_LOG_LEVEL
  if (!LOG_LEVELS.includes(level)) throw new InvalidLogLevelError(LOG_LEVELS.join(', '), JSON.stringify(env.LOG_LEVEL))
  const files = logging.file === null ? null : new LogFiles(logging.file)
  let stdout: LineSink
  if (process.stdout.isTTY === true) {
    // Loaded only for a terminal: pino-pretty costs about 10 MiB of memory that a server on Fly never needs.
    const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => LineSink
    stdout = pretty({ colorize: true, sync: true })
    if (files === null) return { level, base: null, stream: stdout }
    return { level, base: null, stream: new LogLines(stdout, files, logging.format, true) }
  }
  stdout = batchedWriter(1)
  if (files === null) return { level, base: null, stream: logging.format === 'text' ? new TextLines(stdout) : stdout }
  return { level, base: null, stream: new LogLines(stdout, files, logging.format, false) }
}

/**
 * A pino destination for stdout and `logging.file`: each line in the configured format to both (a terminal's stdout
 * gets pino's JSON, for pino-pretty).
 */
class LogLines {
  constructor (
    private readonly stdout: LineSink,
    private readonly files: LogFiles,
    private readonly format: LogFormat,
    private readonly stdoutTakesJson: boolean
  ) {}

  write (json: string): boolean {
    const line = this.format === 'text' ? textLine(json) : json
    this.stdout.write(this.stdoutTakesJson ? json : line)
    this.files.write(json, line)
    return true
  }
}

/**
 * A child's output line as the supervisor logs it: its first keys (after pino's level and time) are the `process`
 * binding and the line's `stream`. Only those lines go to the process's own file; Navigator's lines about a process
 * (started, exited) are Navigator's.
 */
const OUTPUT_LINE = /^\{"level":\d+,"time":\d+,"process":("(?:[^"\\]|\\.)*"),"stream":"std(?:out|err)"/

/** `logging.file`: one file, or with `{{app}}` one per process (Navigator's own lines in the `navigator` one). */
class LogFiles {
  private readonly writers = new Map<string, BatchedWriter | null>()
  private readonly perApp: boolean

  constructor (private readonly template: string) {
    this.perApp = template.includes(APP_PLACEHOLDER)
    // Navigator's own file is opened now, so that a path that cannot be written stops the start with its reason.
    const file = this.fileOf(NAVIGATOR_LOG_APP)
    this.writers.set(file, openLogFile(file))
  }

  write (json: string, line: string): void {
    let app = NAVIGATOR_LOG_APP
    if (this.perApp) {
      const output = OUTPUT_LINE.exec(json)
      if (output !== null) app = JSON.parse(output[1]) as string
    }
    const file = this.fileOf(app)
    let writer = this.writers.get(file)
    if (writer === undefined) {
      try {
        writer = openLogFile(file)
      } catch (err) {
        // Told once, in Navigator's own file and on stdout; the process's lines still go to stdout.
        writer = null
        const warning = JSON.stringify({ level: 40, time: Date.now(), file, err: (err as Error).message, msg: 'cannot open the log file of a process; its lines go to stdout only' }) + '\n'
        this.write(warning, json === line ? warning : textLine(warning))
      }
      this.writers.set(file, writer)
    }
    writer?.write(line)
  }

  private fileOf (app: string): string {
    return this.perApp ? this.template.replaceAll(APP_PLACEHOLDER, app) : this.template
  }
}

/** A log file opened for appending (it and its folder created); throws with the reason when that cannot be done. */
function openLogFile (file: string): BatchedWriter {
  try {
    mkdirSync(dirname(file), { recursive: true })
    return batchedWriter(openSync(file, 'a', 0o644))
  } catch (err) {
    throw new Error(`cannot open the log file ${file} (logging.file): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/**
 * Log lines go to their file descriptor (stdout, a log file) in batches: the lines of up to LOG_FLUSH_INTERVAL_MS
 * leave in one write (at once when 64 KiB are pending), and what is pending is written synchronously at exit. Under
 * load this replaces a write system call per line (the info line of every sticky replay) with one per interval
 * (bench/README.md).
 */
class BatchedWriter {
  private pending = ''
  private timer: NodeJS.Timeout | null = null
  private readonly flushSoon = (): void => {
    this.timer = null
    this.flush()
  }

  constructor (private readonly fd: number) {}

  write (line: string): boolean {
    this.pending += line
    if (this.pending.length >= 65_536) this.flush()
    else if (this.timer === null) {
      this.timer = setTimeout(this.flushSoon, LOG_FLUSH_INTERVAL_MS)
      // Pending lines never keep the process alive: the exit handler writes them.
      this.timer.unref()
    }
    return true
  }

  flush (): void {
    if (this.pending === '') return
    let buffer = Buffer.from(this.pending)
    this.pending = ''
    while (buffer.length > 0) {
      try {
        buffer = buffer.subarray(writeSync(this.fd, buffer))
      } catch (err) {
        // A non-blocking pipe that is full: wait a millisecond and go on; anything else (EPIPE): the lines are lost.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
      }
    }
  }
}

/** One writer per file descriptor, each flushed at exit. */
const writers = new Map<number, BatchedWriter>()

function batchedWriter (fd: number): BatchedWriter {
  let writer = writers.get(fd)
  if (writer === undefined) {
    if (writers.size === 0) process.once('exit', () => { for (const each of writers.values()) each.flush() })
    writer = new BatchedWriter(fd)
    writers.set(fd, writer)
  }
  return writer
}
