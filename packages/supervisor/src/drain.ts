// Waiting for a process's open requests (and WebSockets) to finish before it is stopped or restarted.

/**
 * Resolves when the callback handed to `attach` is called (the owner calls it when its count reaches 0), or after
 * `limitMs`, when `onLimit` runs first. `attach(null)` tells the owner the wait is over either way.
 */
export async function waitForDrain (
  limitMs: number,
  attach: (drained: (() => void) | null) => void,
  onLimit: () => void
): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      attach(null)
      onLimit()
      resolve()
    }, limitMs)
    timer.unref()
    attach(() => {
      clearTimeout(timer)
      attach(null)
      resolve()
    })
  })
}
