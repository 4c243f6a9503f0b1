import { FlyEdge, type RouteEvent } from './edge.js'
import { launchMachines, type LaunchedMachines } from './launch.js'
import { noteworthyOutput } from './machine-log.js'
import type { ReplayCacheRule } from './replay-cache.js'

export interface LocalFlyOptions {
  /** Navigator config every Machine runs, as it is (each gets a copy with its own ports). */
  config: string
  machines: number
  app: string
  regions?: string[]
  /** Edge port; default DEFAULT_EDGE_PORT. */
  port?: number
  host?: string
  autostart?: boolean
  /** Session-based replay caching, like fly.toml's `[[http_service.http_options.replay_cache]]`. */
  replayCache?: ReplayCacheRule[]
  env?: NodeJS.ProcessEnv
  /** Print every routing decision and every Machine output line; without it, only their warnings and errors. */
  verbose?: boolean
  write?: (line: string) => void
}

export interface LocalFly {
  edge: FlyEdge
  launched: LaunchedMachines
  url: string
  close (): Promise<void>
}

export const DEFAULT_EDGE_PORT = 8080
export const DEFAULT_APP = 'navigator-demo'

/** Launch the Machines and put the edge in front of them; close() stops everything. */
export async function startLocalFly (options: LocalFlyOptions): Promise<LocalFly> {
  const write = options.write ?? ((line: string) => { process.stdout.write(line + '\n') })
  const launched = await launchMachines({
    config: options.config,
    count: options.machines,
    app: options.app,
    regions: options.regions,
    env: options.env,
    onOutput: (id, line) => {
      const shown = options.verbose === true ? line : noteworthyOutput(line)
      if (shown !== null) write(`[${id}] ${shown}`)
    }
  })
  const edge = new FlyEdge({
    app: options.app,
    machines: launched.machines,
    launcher: launched.launcher,
    flycastPorts: launched.flycastPorts,
    autostart: options.autostart,
    replayCache: options.replayCache,
    listen: { host: options.host ?? '127.0.0.1', port: options.port ?? DEFAULT_EDGE_PORT }
  })
  if (options.verbose === true) {
    edge.on('route', (event: RouteEvent) => {
      const how = event.fallback ? 'fallback' : event.replayed ? 'replayed' : event.replayCache === 'hit' ? 'replay cache hit' : 'balanced'
      const via = event.flycast ? ' via Flycast' : ''
      write(`edge: ${event.method} ${event.url} -> ${event.machineId} (${how}${via}) ${event.status}${event.answeredWithReplay ? ' fly-replay' : ''}`)
    })
  }
  try {
    await edge.listen()
  } catch (err) {
    await launched.stop()
    throw err
  }
  return {
    edge,
    launched,
    url: edge.url,
    close: async () => {
      await edge.close()
      await launched.stop()
    }
  }
}

/** Stop `fly` on the first SIGINT or SIGTERM, then exit. */
export function stopOnSignals (fly: LocalFly, write: (line: string) => void): void {
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    write('Stopping the edge and the Machines...')
    fly.close().then(() => process.exit(0), (err: Error) => {
      write(`error while stopping: ${err.message}`)
      process.exit(1)
    })
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
