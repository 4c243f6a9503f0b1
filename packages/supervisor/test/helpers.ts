import type { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import type { ApplicationsConfig, StandaloneServerConfig, TenantConfig } from '@navigator/config'

export const fixturesDir = fileURLToPath(new URL('./fixtures/', import.meta.url))

export function fixture (file: string): string {
  return fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url))
}

export interface LogLine { level: string, msg?: string, [key: string]: unknown }

/** A pino-like logger that records every line. */
export function recordingLogger (): { logger: any, lines: LogLine[] } {
  const lines: LogLine[] = []
  const make = (bindings: Record<string, unknown>): any => {
    const at = (level: string) => (obj: object, msg?: string) => { lines.push({ level, ...bindings, ...obj, msg }) }
    return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), child: (more: Record<string, unknown>) => make({ ...bindings, ...more }) }
  }
  return { logger: make({}), lines }
}

/** A port that was free a moment ago. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

export function tenantConfig (name: string, overrides: Partial<TenantConfig> = {}): TenantConfig {
  return { name, path: `/${name}`, workingDir: fixturesDir, var: {}, start: 'lazy', env: {}, command: null, args: null, ...overrides }
}

export function standaloneConfig (name: string, port: number, overrides: Partial<StandaloneServerConfig> = {}): StandaloneServerConfig {
  return { name, matchPath: `/${name}`, command: process.execPath, args: [fixture('tcp-server.mjs')], workingDir: fixturesDir, port, env: {}, ...overrides }
}

export async function applicationsConfig (overrides: Partial<ApplicationsConfig> = {}): Promise<ApplicationsConfig> {
  return {
    env: {},
    command: process.execPath,
    args: [fixture('app.mjs')],
    // Below the kernel's ephemeral range, where ports that tests ask the kernel for come from.
    startPort: 10_000 + Math.floor(Math.random() * 22_000),
    startupTimeoutMs: 5000,
    idleTimeoutMs: 0,
    healthCheck: '/up',
    tenants: [],
    standaloneServers: [],
    ...overrides
  }
}

/** Resolves with the first event `name` whose payload satisfies `accept`; rejects after `timeoutMs`. */
export function nextEvent<T = any> (emitter: EventEmitter, name: string, accept: (payload: T) => boolean = () => true, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const listener = (payload: T): void => {
      if (!accept(payload)) return
      clearTimeout(timer)
      emitter.removeListener(name, listener)
      resolve(payload)
    }
    const timer = setTimeout(() => {
      emitter.removeListener(name, listener)
      reject(new Error(`no '${name}' event within ${timeoutMs} ms`))
    }, timeoutMs)
    emitter.on(name, listener)
  })
}

/** GET http://127.0.0.1:port/path as JSON, without keep-alive. */
export function getJson (port: number, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => {
        try {
          resolve(JSON.parse(body))
        } catch (err) {
          reject(err)
        }
      })
    }).once('error', reject)
  })
}

/** True while `pid` exists, strictly as the kernel sees it (a zombie counts as alive). */
export function pidExists (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
}

/**
 * True while `pid` is a running process. A zombie is not running: where PID 1 does not reap
 * orphans (as in some containers), a killed grandchild whose parent died too stays a zombie.
 */
export function pidRunning (pid: number): boolean {
  if (!pidExists(pid)) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
    return state !== 'Z' && state !== 'X'
  } catch {
    return !pidExists(pid) ? false : process.platform !== 'linux'
  }
}

/** Polls `condition` every 20 ms; resolves true as soon as it holds, false after `timeoutMs`. */
export async function eventually (condition: () => boolean, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() >= deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return true
}
