import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { InvalidOptionError } from './errors.js'
import type { SupervisorLogger } from './logger.js'
import { Supervisor, type SupervisorOptions } from './supervisor.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The supervisor of the tenants and standalone servers this app proxies to. */
    processSupervisor: Supervisor
  }
}

/** The Supervisor's own options, with the logger defaulting to the app's. */
type OwnedSupervisorOptions = Omit<SupervisorOptions, 'logger'> & { logger?: SupervisorLogger }

/**
 * Either an existing Supervisor, which the plugin only decorates the app with, or the options of one the
 * plugin creates, starts when the app is ready and stops when it closes. Mixing both is refused.
 */
export type ProcessSupervisorOptions =
  | ({ supervisor: Supervisor } & { [K in keyof OwnedSupervisorOptions]?: never })
  | (OwnedSupervisorOptions & { supervisor?: never })

/** Every SupervisorOptions field; a Record, so a field added to SupervisorOptions and forgotten here fails to compile. */
const SUPERVISOR_FIELDS = Object.keys({
  applications: true,
  logger: true,
  env: true,
  host: true,
  stopGraceMs: true,
  drainMs: true,
  restartBackoff: true,
  managedProcesses: true,
  cgroupDir: true,
  reload: true
} satisfies Record<keyof SupervisorOptions, true>)

/** The existing supervisor to decorate with, or null when the plugin is to create its own. */
function existingSupervisor (options: Record<string, unknown>): Supervisor | null {
  if (options.supervisor === undefined) return null
  if (!(options.supervisor instanceof Supervisor)) throw new InvalidOptionError('supervisor must be a Supervisor instance')
  // The existing supervisor keeps the options it was created with, so these would be silently ignored.
  const ignored = SUPERVISOR_FIELDS.filter((field) => options[field] !== undefined)
  if (ignored.length > 0) throw new InvalidOptionError(`pass either supervisor or the options of a new Supervisor, not both (got supervisor and ${ignored.join(', ')})`)
  return options.supervisor
}

async function processSupervisorPlugin (fastify: FastifyInstance, options: ProcessSupervisorOptions): Promise<void> {
  const existing = existingSupervisor(options)
  if (existing !== null) {
    // Its owner keeps it across several Fastify instances (one per configuration reload), so starting
    // or stopping it is the owner's job, not this app's.
    fastify.decorate('processSupervisor', existing)
    return
  }
  if (options.applications === undefined) throw new InvalidOptionError('pass either supervisor (an existing Supervisor) or applications (to create one)')
  const supervisor = new Supervisor({ ...options, logger: options.logger ?? fastify.log })
  fastify.decorate('processSupervisor', supervisor)
  // onReady rather than now: eager tenants and standalone servers start once the app can serve them,
  // and an app that is never readied spawns nothing.
  fastify.addHook('onReady', async () => { await supervisor.start() })
  // onClose runs after the server has stopped accepting connections, so no request reaches a stopping child.
  fastify.addHook('onClose', async () => { await supervisor.stop() })
}

/**
 * Decorates the app with `processSupervisor`. Given `supervisor`, it only decorates; given the Supervisor's
 * options instead, it creates one, starts it in onReady and stops every child process in onClose.
 * Throws NAV_SUPERVISOR_INVALID_OPTION at registration for options that are neither or both.
 */
export const processSupervisor = fp(processSupervisorPlugin, {
  fastify: '5.x',
  name: '@navigator/supervisor'
})
