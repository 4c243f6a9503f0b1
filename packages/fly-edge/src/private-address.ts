// A Machine's private address on the edge, standing in for `<machine_id>.vm.<app>.internal:<port>`
// (https://fly.io/docs/networking/private-networking/). Fly's `.internal` DNS answers only for started Machines, so
// a peer dialling a stopped or suspended Machine fails at once, before any byte is sent. Here the listener is open
// while the Machine is started and closed otherwise: the kernel refuses the connection, which a client sees as the
// same early, clean failure (nothing of its request left), never as a hang on a SIGSTOPped process.

import net from 'node:net'
import { listenOn, originOf } from './listen.js'
import type { Machine, MachineState } from './machines.js'

/** Re-listening on the same port right after closing it may find the old handle not yet released. */
const RELISTEN_ATTEMPTS = 20
const RELISTEN_DELAY_MS = 10

/** Raw TCP to one Machine while it is started: WebSockets and bodies pass through unchanged. */
export class PrivateAddress {
  readonly machine: Machine
  readonly host: string
  #port: number
  #server: net.Server | null = null
  readonly #sockets = new Set<net.Socket>()
  // Opening and closing happen in order, however fast the Machine's state flips.
  #queue: Promise<void> = Promise.resolve()
  #closed = false

  constructor (machine: Machine, host: string, port: number) {
    this.machine = machine
    this.host = host
    this.#port = port
  }

  /** The port (0 until the address has listened once). */
  get port (): number {
    return this.#port
  }

  get url (): string {
    return originOf({ address: this.host, port: this.#port })
  }

  /** Listen once to learn a port when none was given, then follow the Machine's state. */
  async open (): Promise<void> {
    if (this.#port === 0) await this.#enqueue(async () => { if (!this.#closed) await this.#listen() })
    await this.sync()
  }

  /**
   * Open while the Machine is started, closed otherwise; `state` is the state the Machine is about to enter when it
   * is not there yet (the address closes before a stop begins). A stopped Machine's connections end with it; a
   * suspended Machine's stay (they would hang on Fly too).
   */
  sync (state: MachineState = this.machine.state): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#closed) return
      if (state === 'started') {
        if (this.#server === null) await this.#listen()
        return
      }
      this.#stopListening()
      if (state === 'stopped') for (const socket of this.#sockets) socket.destroy()
    })
  }

  async close (): Promise<void> {
    this.#closed = true
    await this.#enqueue(async () => {
      this.#stopListening()
      for (const socket of this.#sockets) socket.destroy()
    })
  }

  #enqueue (step: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(step)
    this.#queue = next.catch(() => {})
    return next
  }

  async #listen (): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const server = net.createServer({ allowHalfOpen: true }, (socket) => { this.#forward(socket) })
      try {
        this.#port = (await listenOn(server, this.host, this.#port)).port
        this.#server = server
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= RELISTEN_ATTEMPTS) throw err
        await new Promise((resolve) => setTimeout(resolve, RELISTEN_DELAY_MS))
      }
    }
  }

  #stopListening (): void {
    this.#server?.close()
    this.#server = null
  }

  #forward (client: net.Socket): void {
    const upstream = net.connect({
      host: this.machine.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.machine.url.port === '' ? 80 : Number(this.machine.url.port),
      allowHalfOpen: true
    })
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket)
      socket.setNoDelay(true)
      socket.on('close', () => { this.#sockets.delete(socket) })
    }
    // An error on either side ends both at once; an orderly end is passed on as an end (a half close).
    client.on('error', () => { upstream.destroy() })
    upstream.on('error', () => { client.destroy() })
    client.on('close', (hadError) => { if (hadError) upstream.destroy(); else upstream.end() })
    upstream.on('close', (hadError) => { if (hadError) client.destroy(); else client.end() })
    client.pipe(upstream)
    upstream.pipe(client)
  }
}
