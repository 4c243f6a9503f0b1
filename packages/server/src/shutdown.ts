import type { Server } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { UpstreamProxy, WebSocketRelay } from '@navigator/proxy'
import { settlesWithin } from '@navigator/supervisor'
import type { MachineIdle, Supervisor } from '@navigator/supervisor'
import type { CableHub } from './cable-hub.js'
import type { Generations } from './generations.js'

/** At shutdown, how long the upstream connections get to close before the children are stopped regardless. */
export const UPSTREAM_CLOSE_WAIT_MS = 1_000

export interface ShutdownParts {
  server: Server
  generations: Generations
  webSockets: WebSocketRelay
  /** The TurboCable hub: its WebSockets are closed with 1001 beside the relayed ones. */
  cable: CableHub
  proxy: UpstreamProxy
  supervisor: Supervisor
  machineIdle: MachineIdle | null
  log: FastifyBaseLogger
  /** hooks.server.stop, each killed at its timeout or at `deadline` (a Date.now() time), whichever comes first. */
  stopHooks: (deadline: number) => Promise<void>
}

/**
 * Stops accepting, drains requests and pending upgrades up to shutdown_timeout, closes WebSockets with 1001, closes
 * every client connection (upgrade sockets that never became WebSockets included), then the upstream connections,
 * then stops the children, then runs hooks.server.stop (together given at most shutdown_timeout more: they run when
 * nothing writes to the apps' files any longer, for a last backup or upload). Once only.
 */
export async function shutdown (parts: ShutdownParts): Promise<void> {
  const { server, generations, webSockets, cable, proxy, supervisor, machineIdle, log, stopHooks } = parts
  if (generations.closing) return
  generations.closing = true
  log.info({ inFlight: generations.inFlight, webSockets: webSockets.size }, 'shutting down')
  const stopped = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  server.closeIdleConnections()
  await generations.drain(generations.current.config.server.shutdownTimeoutMs)
  await Promise.all([webSockets.closeAll(), cable.closeAll()])
  server.closeAllConnections()
  generations.destroyUpgradeSockets()
  await stopped
  machineIdle?.stop()
  // Kept-alive upstream connections are closed before the children are asked to stop: an app server that waits for
  // its connections to close on SIGTERM (as Node's server.close() does) would otherwise wait out the stop grace and
  // be killed. If a request is still in flight (an upstream that ignores the abort), the children are stopped after
  // UPSTREAM_CLOSE_WAIT_MS anyway, which ends its connection.
  const upstreamsClosed = proxy.close()
  await settlesWithin(upstreamsClosed, UPSTREAM_CLOSE_WAIT_MS)
  await supervisor.stop()
  await upstreamsClosed.catch((err: Error) => { log.warn({ err: err.message }, 'closing the upstream connections failed') })
  await stopHooks(Date.now() + generations.current.config.server.shutdownTimeoutMs)
  await generations.current.app.close()
  log.info('stopped')
}
