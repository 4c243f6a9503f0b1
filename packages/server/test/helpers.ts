import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../bin/navigator.js', import.meta.url))
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))

interface Teardown { teardown (fn: () => unknown): void }

export interface LogLine { msg?: string, level?: number, [key: string]: unknown }

export interface Running {
  child: ChildProcess
  dir: string
  address: string
  logs: LogLine[]
  stderr: () => string
  waitForLog (predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** Writes files (path -> content) under a new temporary folder and returns it. */
export function tempDir (files: Record<string, string | Buffer> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-server-'))
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), content)
  }
  return dir
}

/** Runs the CLI to completion and collects its output. */
export async function runCli (args: string[], timeoutMs = 10_000): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>((resolve) => { child.once('exit', (c) => { resolve(c) }) })
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** A port nobody listens on right now. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

/**
 * Starts `navigator <dir>/navigator.yml` as a real process and waits for its
 * "listening" log line. Stopped (SIGTERM, then SIGKILL) at teardown.
 */
export async function startNavigator (t: Teardown, dir: string, env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const child = spawn(process.execPath, [BIN, join(dir, 'navigator.yml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'info', ...env }
  })
  const logs: LogLine[] = []
  const waiters = new Set<{ predicate: (line: LogLine) => boolean, resolve: (line: LogLine) => void }>()
  let errors = ''
  let pending = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString()
    let newline
    while ((newline = pending.indexOf('\n')) !== -1) {
      const text = pending.slice(0, newline)
      pending = pending.slice(newline + 1)
      let line: LogLine
      try { line = JSON.parse(text) as LogLine } catch { line = { msg: text } }
      logs.push(line)
      for (const waiter of waiters) {
        if (waiter.predicate(line)) {
          waiters.delete(waiter)
          waiter.resolve(line)
        }
      }
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => { errors += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })

  async function waitForLog (predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const seen = logs.find(predicate)
    if (seen !== undefined) return seen
    return await new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (line: LogLine) => {
          clearTimeout(timer)
          resolve(line)
        }
      }
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        reject(new Error(`no such log line within ${timeoutMs} ms; stderr: ${errors}; logs: ${JSON.stringify(logs.slice(-20))}`))
      }, timeoutMs)
      waiters.add(waiter)
    })
  }

  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(timer)
  })

  const listening = await Promise.race([
    waitForLog((line) => line.msg === 'listening', 15_000),
    exited.then(({ code }) => { throw new Error(`navigator exited with ${String(code)}: ${errors}`) })
  ])
  return { child, dir, address: listening.address as string, logs, stderr: () => errors, waitForLog, exited }
}

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
}

/** One HTTP request with the path sent exactly as given (no URL normalisation). */
export async function http (address: string, path: string, options: { method?: string, headers?: Record<string, string>, body?: Buffer | string } = {}): Promise<Answer> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString() })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}
