/**
 * The latest of a kind of operation still running (a spawn), so that a stop can wait for it: `track` records a
 * promise, which is forgotten once it settles unless a later one replaced it.
 */
export class Pending {
  current: Promise<void> | null = null

  track (operation: Promise<void>): Promise<void> {
    this.current = operation
    const clear = (): void => { if (this.current === operation) this.current = null }
    operation.then(clear, clear)
    return operation
  }
}
