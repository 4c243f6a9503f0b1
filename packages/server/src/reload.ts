import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { NavigatorConfig } from '@navigator/config'
import type { Supervisor } from '@navigator/supervisor'
import type { Generation, Generations } from './generations.js'

export interface ReloadParts {
  generations: Generations
  supervisor: Supervisor
  log: FastifyBaseLogger
  /** A new, empty Fastify instance for the next generation. */
  newApp: () => FastifyInstance
  /** Builds a generation's plugins and steps on an app (it does not answer yet). */
  prepare: (app: FastifyInstance, config: NavigatorConfig) => Promise<Generation>
}

/**
 * Swaps in a new configuration without dropping a request or a WebSocket: a new generation is built beside the
 * current one, the supervisor learns the new processes, and only then do new requests go to it. The previous
 * generation finishes its requests and is closed after the last. Ignored during shutdown.
 */
export async function reload (parts: ReloadParts, next: NavigatorConfig): Promise<void> {
  const { generations, supervisor, log } = parts
  if (generations.closing) {
    log.warn('shutting down: the configuration is not reloaded')
    return
  }
  const listening = generations.current.config.server.listen
  if (next.server.listen.host !== listening.host || (next.server.listen.port !== listening.port && next.server.listen.port !== 0)) {
    log.warn('server.listen changed: a restart is needed to listen on the new address')
  }
  if (next.logging.format !== generations.current.config.logging.format) {
    log.warn('logging.format changed: a restart is needed to write the new format')
  }
  if (next.logging.file !== generations.current.config.logging.file) {
    log.warn('logging.file changed: a restart is needed to write to the new file')
  }
  const app = parts.newApp()
  let generation: Generation
  let applied: Promise<void>
  try {
    generation = await parts.prepare(app, next)
    // update() registers synchronously (it throws at once, having applied nothing, or returns); the drain of
    // replaced processes and the restarts go on in the background, bounded by shutdown_timeout.
    applied = supervisor.update(next.applications, { drainMs: next.server.shutdownTimeoutMs })
  } catch (err) {
    // A half-built generation never answers: it is closed and the previous one stays current.
    await app.close().catch(() => {})
    throw err
  }
  generations.replace(generation)
  log.info('configuration reloaded')
  applied.catch((err: Error) => { log.error({ err }, 'the reloaded configuration is in effect, but replacing a process failed') })
}
