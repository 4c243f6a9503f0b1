import type { EventEmitter } from 'node:events'
import type { ApplicationsConfig } from '@navigator/config'
import type { SupervisorLogger } from './logger.js'
import type { PortAllocator } from './ports.js'
import type { TenantPool } from './pool.js'
import type { MemoryLimits } from './cgroup.js'
import type { ReloadConfig } from './hooks.js'

/** What tenants and standalone servers share with the Supervisor that owns them. */
export interface SupervisorContext {
  readonly events: EventEmitter
  readonly logger: SupervisorLogger
  readonly ports: PortAllocator
  readonly host: string
  readonly env: NodeJS.ProcessEnv
  readonly stopGraceMs: number
  /** applications.max_size. */
  readonly pool: TenantPool
  /** memory_limit. */
  readonly memoryLimits: MemoryLimits
  /** `reload_config` of tenant hooks, or undefined. */
  readonly reload?: ReloadConfig
  applications: ApplicationsConfig
}

/** Logs a child's output line with its name and re-emits it as an 'output' event. */
export function outputHandler (context: SupervisorContext, name: string): (stream: 'stdout' | 'stderr', line: string) => void {
  const logger = context.logger.child({ process: name })
  return (stream, line) => {
    if (stream === 'stdout') logger.info({ stream }, line)
    else logger.warn({ stream }, line)
    context.events.emit('output', { name, stream, line })
  }
}
