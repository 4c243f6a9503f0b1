import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { createUpstreamProxy, stepHook } from '@navigator/proxy'
import type { Step, UpstreamProxy } from '@navigator/proxy'
import { flycastOrigin } from './direct-proxy.js'
import { createDnsDiscovery, createStaticDiscovery, noDiscovery, type MachineDiscovery } from './discovery.js'
import { resolveOptions, type ResolvedOptions, type StickySessionsOptions } from './options.js'
import { StickyStep, type StickySession } from './step.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The sticky-session decision; null on paths that are not sticky or when the feature is off. */
    stickySession: StickySession | null
  }
}

/** The sticky-session step and what must be released with it. */
export interface StickySessions {
  /** Decides on the request's cookie and applies the decision; requests off the sticky paths go on untouched. */
  readonly step: Step
  /** Stops what discovery runs in the background and closes the proxy made when none was given. */
  close (): Promise<void>
}

function createDiscovery (options: ResolvedOptions, log: FastifyBaseLogger): MachineDiscovery & { close?: () => void } {
  const discovery = options.discovery
  if (typeof discovery === 'object') return discovery
  if (discovery === 'static') return createStaticDiscovery([...options.peers.keys(), options.machineId as string])
  if (discovery === 'dns') return createDnsDiscovery({ appName: options.appName as string, log })
  return noDiscovery
}

/**
 * Sticky sessions as a pipeline step, for the plugin's hook and for a server that runs its own list of steps; null
 * when the feature is off (disabled, or no Machine ID: said once, in `log`).
 */
export function createStickySessions (rawOptions: StickySessionsOptions, log: FastifyBaseLogger): StickySessions | null {
  const options = resolveOptions(rawOptions)
  if (!options.enabled) return null
  const machineId = options.machineId
  if (machineId === null) {
    log.info('Sticky sessions are off: no Machine ID (set FLY_MACHINE_ID or the machineId option)')
    return null
  }
  if (options.directProxy === 'flycast' && flycastOrigin(options) === null) {
    log.warn('Sticky sessions: direct_proxy flycast needs an app name (FLY_APP_NAME) or flycast_url; a body too large to replay gets the fallback')
  }
  const discovery = createDiscovery(options, log)
  const ownsDiscovery = typeof options.discovery !== 'object'
  const ownProxy = options.proxy === null ? createUpstreamProxy() : null
  const step = new StickyStep(options, machineId, discovery, options.proxy ?? ownProxy as UpstreamProxy)
  return {
    step,
    async close () {
      if (ownsDiscovery) discovery.close?.()
      await ownProxy?.close()
    }
  }
}

async function stickySessionsPlugin (fastify: FastifyInstance, options: StickySessionsOptions): Promise<void> {
  fastify.decorateRequest('stickySession', null)
  const sticky = createStickySessions(options, fastify.log)
  if (sticky === null) return
  fastify.addHook('onRequest', stepHook(sticky.step))
  fastify.addHook('onClose', sticky.close)
}

export const stickySessions = fp(stickySessionsPlugin, { fastify: '5.x', name: '@navigator/sticky-sessions' })
