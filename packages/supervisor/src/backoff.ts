/** First restart delay after a crash. */
export const RESTART_BACKOFF_INITIAL_MS = 100
/** The delay doubles after each crash up to this. */
export const RESTART_BACKOFF_MAX_MS = 30_000
/** A process that stayed up this long starts again from the initial delay when it next crashes. */
export const RESTART_BACKOFF_RESET_MS = 60_000

export interface RestartBackoff {
  initialMs: number
  maxMs: number
  resetAfterMs: number
}

/**
 * The delays before the restarts of one process that keeps exiting: they double up to `maxMs`, and start again from
 * `initialMs` once the process had been up for `resetAfterMs`, so a crash after a long healthy run restarts quickly
 * while a crash loop does not spin. Shared by standalone servers and managed processes.
 */
export class RestartDelays {
  private nextMs: number

  constructor (private readonly backoff: RestartBackoff) {
    this.nextMs = backoff.initialMs
  }

  /** The delay before the next start; `healthyForMs` is how long the process was up (0 when it never came up). */
  next (healthyForMs: number): number {
    if (healthyForMs >= this.backoff.resetAfterMs) this.nextMs = this.backoff.initialMs
    const delayMs = this.nextMs
    this.nextMs = Math.min(delayMs * 2, this.backoff.maxMs)
    return delayMs
  }
}
