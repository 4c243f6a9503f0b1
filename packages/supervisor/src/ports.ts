import net from 'node:net'
import { SpawnFailedError } from './errors.js'

const HIGHEST_PORT = 65535

/** Resolves true when `host:port` can be bound right now (the listener is closed again at once). */
export function isPortFree (port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true))
    })
  })
}

/**
 * Hands out tenant ports. A port is reserved synchronously before it is probed, so two tenants
 * starting at the same moment never receive the same port, and ports of our own children (which
 * may not be listening yet) are never handed out twice.
 */
export class PortAllocator {
  private readonly reserved = new Set<number>()
  private fixed = new Set<number>()

  constructor (private readonly host: string) {}

  /** Ports that belong to standalone servers: never given to a tenant. */
  setFixedPorts (ports: Iterable<number>): void {
    this.fixed = new Set(ports)
  }

  async allocate (startPort: number, owner: string): Promise<number> {
    for (let port = startPort; port <= HIGHEST_PORT; port++) {
      if (this.reserved.has(port) || this.fixed.has(port)) continue
      this.reserved.add(port)
      if (await isPortFree(port, this.host)) return port
      this.reserved.delete(port)
    }
    throw new SpawnFailedError(owner, `no free port from ${startPort} upwards`)
  }

  release (port: number): void {
    this.reserved.delete(port)
  }
}
