import type { FastifyBaseLogger } from 'fastify'
import type { NavigatorConfig } from '@navigator/config'
import { MachineIdle, Supervisor } from '@navigator/supervisor'
import type { Identity, ProcessManager } from './steps/index.js'

/** The Machine's idle suspend or stop (server.idle), when configured and on Fly (a Machine ID and an app name). */
export function machineIdleFor (config: NavigatorConfig, identity: Identity, log: FastifyBaseLogger, beforeIdle?: () => Promise<void>): MachineIdle | null {
  if (config.server.idle === null) return null
  if (identity.machineId === null || identity.appName === null) {
    log.warn('FLY_MACHINE_ID or FLY_APP_NAME is not set: server.idle is off')
    return null
  }
  return new MachineIdle({ ...config.server.idle, machineId: identity.machineId, appName: identity.appName, logger: log, beforeIdle })
}

/** What the steps use of the supervisor; open WebSockets count for the process (idle stop) and the Machine (idle suspend). */
export function processManager (supervisor: Supervisor, machineIdle: MachineIdle | null): ProcessManager {
  return {
    ensureTenant: async (name) => await supervisor.ensureTenant(name),
    // The hot path's synchronous check: a ready tenant is proxied without a promise.
    readyPort (name) {
      try {
        const status = supervisor.tenantStatus(name)
        return status.state === 'ready' ? status.port : null
      } catch {
        return null // an unknown tenant (a reload removed it): ensureTenant says why
      }
    },
    standaloneStatus: (name) => supervisor.standaloneStatus(name),
    whenStandaloneRunning: async (name, timeoutMs) => await supervisor.whenStandaloneRunning(name, timeoutMs),
    trackRequest: (name) => supervisor.trackRequest(name),
    trackWebSocket (name) {
      const release = supervisor.trackWebSocket(name)
      if (machineIdle === null) return release
      machineIdle.webSocketOpened()
      return () => {
        release()
        machineIdle.webSocketClosed()
      }
    }
  }
}
