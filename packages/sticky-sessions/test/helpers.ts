import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { stickySessions, type StickySessionsOptions } from '../src/index.js'

export interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

export interface Built {
  app: FastifyInstance
  logs: LogLine[]
}

/** A Fastify app with only stickySessions, answering "served by". */
export async function build (t: Test, options: StickySessionsOptions = {}, level = 'debug'): Promise<Built> {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      callback()
    }
  })
  const app = Fastify({ logger: { level, stream } })
  await app.register(stickySessions, { machineId: 'm1', discovery: 'none', ...options })
  app.all('/*', async (request) => ({ servedBy: 'm1', sticky: request.stickySession }))
  t.teardown(async () => await app.close())
  await app.ready()
  return { app, logs }
}

export function setCookies (headers: Record<string, unknown>): string[] {
  const value = headers['set-cookie']
  if (value === undefined) return []
  return Array.isArray(value) ? value as string[] : [value as string]
}
