import { writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { LogController } from 'fastify'
import type { FastifyBaseLogger } from 'fastify'
import { InvalidLogLevelError } from './errors.js'
import { nonEmpty } from './identity.js'
import { TextLines } from './text-log.js'

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

/**
 * pino's options from LOG_LEVEL and `logging.format`: JSON or text lines on stdout, readable colour lines for a
 * person at a terminal. No `pid` or `hostname` on every line: a child's pid and a DNS name logged as `hostname`
 * would repeat those keys in one line, and on Fly the log shipper says which Machine a line came from.
 */
export function loggerOptions (env: NodeJS.ProcessEnv, format: LogFormat = 'json'): object {
  const level = nonEmpty(env.LOG_LEVEL)?.toLowerCase() ?? DEFAULT_LOG_LEVEL
  if (!LOG_LEVELS.includes(level)) throw new InvalidLogLevelError(LOG_LEVELS.join(', '), JSON.stringify(env.LOG_LEVEL))
  if (process.stdout.isTTY === true) {
    // Loaded only for a terminal: pino-pretty costs about 10 MiB of memory that a server on Fly never needs.
    const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => object
    return { level, base: null, stream: pretty({ colorize: true, sync: true }) }
  }
  return { level, base: null, stream: format === 'text' ? new TextLines(batchedStdout()) : batchedStdout() }
}

/**
 * JSON log lines go to stdout in batches: the lines of up to LOG_FLUSH_INTERVAL_MS leave in one write (at once
 * when 64 KiB are pending), and what is pending is written synchronously at exit. Under load this replaces a write
 * system call per line (the info line of every sticky replay) with one per interval (bench/README.md).
 */
class BatchedStdout {
  private pending = ''
  private timer: NodeJS.Timeout | null = null
  private readonly flushSoon = (): void => {
    this.timer = null
    this.flush()
  }

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
        buffer = buffer.subarray(writeSync(1, buffer))
      } catch (err) {
        // A non-blocking pipe that is full: wait a millisecond and go on; anything else (EPIPE): the lines are lost.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
      }
    }
  }
}

let stdoutLines: BatchedStdout | null = null

function batchedStdout (): BatchedStdout {
  if (stdoutLines === null) {
    const lines = new BatchedStdout()
    process.once('exit', () => { lines.flush() })
    stdoutLines = lines
  }
  return stdoutLines
}
