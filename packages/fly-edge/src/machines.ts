import { isValidMachineId } from '@navigator/fly-replay'
import { NAV_FLY_EDGE_INVALID_OPTION } from './errors.js'

export type MachineState = 'started' | 'stopped' | 'suspended'

/** How a Machine is described to the edge. */
export interface MachineSpec {
  /** 1 to 64 characters of a-z, 0-9 and '-', like a Fly Machine ID. */
  id: string
  /** Base URL of the process that plays this Machine, e.g. http://127.0.0.1:4100 */
  url: string
  /** Fly region code; default DEFAULT_REGION. */
  region?: string
  /** App the Machine belongs to; default the edge's app. */
  app?: string
  /** Initial state; default 'started'. */
  state?: MachineState
  /** Port of the Machine's private address on the edge (its `<id>.vm.<app>.internal`); default a free port. */
  privatePort?: number
}

export interface Machine {
  readonly id: string
  readonly app: string
  readonly region: string
  readonly url: URL
  /** The port asked for the private address; 0 lets the edge pick one (FlyEdge.privateUrl tells which). */
  readonly privatePort: number
  state: MachineState
}

/**
 * Starts, stops, suspends and resumes the processes behind Machines. Without one the
 * edge only flips a Machine's state (the upstream keeps running), which is enough for
 * tests that decide reachability themselves.
 */
export interface MachineLauncher {
  start (id: string): Promise<void>
  stop (id: string): Promise<void>
  suspend (id: string): Promise<void>
  resume (id: string): Promise<void>
  /**
   * Calls `listener` when a Machine's process exits without being asked to (a crash, a kill); returns an
   * unsubscribe function. The edge then marks the Machine stopped, as Fly does when a Machine's main process exits.
   */
  watchExits? (listener: (id: string) => void): () => void
}

export const DEFAULT_REGION = 'iad'
const APP_NAME = /^[a-z0-9-]{1,63}$/
const REGION_CODE = /^[a-z0-9]{2,8}$/

export function isValidAppName (app: unknown): app is string {
  return typeof app === 'string' && APP_NAME.test(app)
}

function toMachine (spec: MachineSpec, defaultApp: string): Machine {
  if (typeof spec !== 'object' || spec === null) throw new NAV_FLY_EDGE_INVALID_OPTION('each machine must be an object')
  if (!isValidMachineId(spec.id)) {
    throw new NAV_FLY_EDGE_INVALID_OPTION(`machine id ${JSON.stringify(spec.id)} must be 1-64 characters of a-z, 0-9 and -`)
  }
  const app = spec.app ?? defaultApp
  if (!isValidAppName(app)) throw new NAV_FLY_EDGE_INVALID_OPTION(`machine ${spec.id}: app ${JSON.stringify(app)} is not a valid app name`)
  const region = spec.region ?? DEFAULT_REGION
  if (!REGION_CODE.test(region)) throw new NAV_FLY_EDGE_INVALID_OPTION(`machine ${spec.id}: region ${JSON.stringify(region)} is not a region code`)
  let url: URL
  try {
    url = new URL(spec.url)
  } catch {
    throw new NAV_FLY_EDGE_INVALID_OPTION(`machine ${spec.id}: url ${JSON.stringify(spec.url)} is not a URL`)
  }
  if (url.protocol !== 'http:') throw new NAV_FLY_EDGE_INVALID_OPTION(`machine ${spec.id}: url must be http://`)
  const state = spec.state ?? 'started'
  if (state !== 'started' && state !== 'stopped' && state !== 'suspended') {
    throw new NAV_FLY_EDGE_INVALID_OPTION(`machine ${spec.id}: state must be started, stopped or suspended`)
  }
  const privatePort = spec.privatePort ?? 0
  if (!Number.isInteger(privatePort) || privatePort < 0 || privatePort > 65535) {
    throw new NAV_FLY_EDGE_INVALID_OPTION(`machine ${spec.id}: privatePort must be a port number`)
  }
  return { id: spec.id, app, region, url, privatePort, state }
}

/** The Machines the edge knows, by app, with a round-robin cursor per app. */
export class MachineRegistry {
  readonly #defaultApp: string
  readonly #byId = new Map<string, Machine>()
  readonly #cursor = new Map<string, number>()

  constructor (defaultApp: string, specs: MachineSpec[]) {
    this.#defaultApp = defaultApp
    for (const spec of specs) this.add(spec)
  }

  add (spec: MachineSpec): Machine {
    const machine = toMachine(spec, this.#defaultApp)
    if (this.#byId.has(machine.id)) throw new NAV_FLY_EDGE_INVALID_OPTION(`machine id ${machine.id} is used twice`)
    this.#byId.set(machine.id, machine)
    return machine
  }

  remove (id: string): void {
    this.#byId.delete(id)
  }

  get (id: string): Machine | undefined {
    return this.#byId.get(id)
  }

  apps (): string[] {
    return [...new Set(this.list().map((m) => m.app))]
  }

  list (app?: string): Machine[] {
    const all = [...this.#byId.values()]
    return app === undefined ? all : all.filter((m) => m.app === app)
  }

  /**
   * Machines of `app` that pass `accept`, in delivery order: started ones first, rotated
   * by the app's round-robin cursor (which advances on every call), then the others when
   * `includeIdle` (candidates for autostart).
   */
  candidates (app: string, accept: (machine: Machine) => boolean, includeIdle: boolean): Machine[] {
    const pool = this.list(app).filter(accept)
    const started = pool.filter((m) => m.state === 'started')
    const cursor = this.#cursor.get(app) ?? 0
    this.#cursor.set(app, cursor + 1)
    const rotated = started.length === 0
      ? started
      : [...started.slice(cursor % started.length), ...started.slice(0, cursor % started.length)]
    return includeIdle ? [...rotated, ...pool.filter((m) => m.state !== 'started')] : rotated
  }
}
