// Shared set-up of the end-to-end tests: real navigator processes running the demo behind the edge.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FlyEdge, type FlyEdgeOptions, type RouteEvent } from '../src/edge.js'
import { launchMachines, type LaunchedMachines } from '../src/launch.js'
import { request, type Reply } from './fixtures.js'

export const DEMO_DIR = fileURLToPath(new URL('../../../examples/demo/', import.meta.url))
export const DEMO_CONFIG = join(DEMO_DIR, 'navigator.yml')
export const COOKIE = '_navigator_machine'
/**
 * The drain time of the test Machines: inside the launcher's stop grace (10 s), so a Machine stopped at teardown
 * exits by itself and stops its tenants, instead of being killed while draining (its tenants, in their own process
 * groups, would outlive it); longer than the tests' slow requests (1.5 s), which a SIGTERM must let finish. The demo
 * itself keeps the default (30 s).
 */
export const TEST_SHUTDOWN_TIMEOUT = '5s'

interface Teardown { teardown (fn: () => unknown): void }

export interface DemoFly {
  edge: FlyEdge
  launched: LaunchedMachines
  routes: RouteEvent[]
  output: string[]
}

/**
 * The demo config, optionally edited (text replacements), written to a temporary folder with
 * absolute paths to the demo's files and `server.shutdown_timeout: TEST_SHUTDOWN_TIMEOUT` unless it sets one.
 */
export async function demoConfig (t: Teardown, edits: Array<[string, string]> = []): Promise<string> {
  let text = await readFile(DEMO_CONFIG, 'utf8')
  text = text.replace('public_dir: public', `public_dir: ${join(DEMO_DIR, 'public')}`)
  text = text.replaceAll('working_dir: .', `working_dir: ${DEMO_DIR}`)
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`demo config has no ${from}`)
    text = text.replace(from, to)
  }
  if (!/^\s*shutdown_timeout:/m.test(text)) text = text.replace(/^server:[ \t]*\n/m, (section) => `${section}  shutdown_timeout: ${TEST_SHUTDOWN_TIMEOUT}\n`)
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-e2e-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'navigator.yml')
  await writeFile(file, text)
  return file
}

export async function startDemoFly (t: Teardown, options: {
  config?: string
  count?: number
  app?: string
  ids?: string[]
  edge?: Partial<FlyEdgeOptions>
} = {}): Promise<DemoFly> {
  const app = options.app ?? 'e2e-demo'
  const output: string[] = []
  const launched = await launchMachines({
    config: options.config ?? await demoConfig(t),
    count: options.count ?? 3,
    app,
    ids: options.ids,
    regions: ['iad', 'ord', 'ams'],
    env: { LOG_LEVEL: 'info' },
    onOutput: (id, line) => { output.push(`[${id}] ${line}`) }
  })
  t.teardown(() => launched.stop())
  const edge = new FlyEdge({
    app, machines: launched.machines, launcher: launched.launcher, flycastPorts: launched.flycastPorts, ...options.edge
  })
  await edge.listen()
  t.teardown(() => edge.close())
  const routes: RouteEvent[] = []
  edge.on('route', (event: RouteEvent) => routes.push(event))
  return { edge, launched, routes, output }
}

/** The value of our cookie in a response's Set-Cookie headers, or null. */
export function cookieFrom (reply: Reply): string | null {
  for (const header of reply.headers['set-cookie'] ?? []) {
    const [pair] = header.split(';')
    const eq = pair.indexOf('=')
    if (pair.slice(0, eq).trim() === COOKIE) return pair.slice(eq + 1).trim()
  }
  return null
}

/** A client that keeps our cookie between requests, like a browser's jar. */
export class CookieJarClient {
  cookie: string | null = null
  constructor (readonly base: string) {}

  async get (path: string, options: Parameters<typeof request>[1] = {}): Promise<Reply> {
    const headers = { ...options.headers }
    if (this.cookie !== null) headers.cookie = `${COOKIE}=${this.cookie}`
    const reply = await request(this.base + path, { ...options, headers })
    this.cookie = cookieFrom(reply) ?? this.cookie
    return reply
  }
}
