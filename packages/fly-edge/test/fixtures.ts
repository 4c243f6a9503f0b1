// Tiny real "Machines" (http servers on 127.0.0.1:0) and a plain HTTP client for the edge's tests.
import { createHash } from 'node:crypto'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import type { Readable } from 'node:stream'
import { FlyEdge, type FlyEdgeOptions, type RouteEvent } from '../src/edge.js'
import type { MachineLauncher, MachineSpec } from '../src/machines.js'

export interface Received {
  machine: string
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  bodyLength: number
  bodySha256: string
}

/** Answers the request itself (return true) or lets the machine echo it (false). */
export type MachineHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => boolean

export interface TestMachine {
  id: string
  url: string
  port: number
  server: http.Server
  received: Received[]
  handler: MachineHandler | null
  close (): Promise<void>
}

interface Teardown { teardown (fn: () => unknown): void }

export async function startTestMachine (t: Teardown, id: string, handler: MachineHandler | null = null): Promise<TestMachine> {
  const machine: TestMachine = {
    id, url: '', port: 0, received: [], handler, server: http.createServer(), close: async () => {}
  }
  machine.server.on('request', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const received: Received = {
        machine: id,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        bodyLength: body.length,
        bodySha256: createHash('sha256').update(body).digest('hex')
      }
      machine.received.push(received)
      if (machine.handler !== null && machine.handler(req, res, body)) return
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] })
      res.end(JSON.stringify(received))
    })
  })
  await new Promise<void>((resolve) => machine.server.listen(0, '127.0.0.1', resolve))
  machine.port = (machine.server.address() as AddressInfo).port
  machine.url = `http://127.0.0.1:${machine.port}`
  machine.close = () => new Promise<void>((resolve) => {
    if (!machine.server.listening) { resolve(); return }
    machine.server.close(() => resolve())
    machine.server.closeAllConnections()
  })
  t.teardown(() => machine.close())
  return machine
}

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
  json<T = Received> (): T
}

export function request (url: string, options: {
  method?: string
  headers?: http.OutgoingHttpHeaders
  body?: Buffer | string | Readable
} = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    const body = options.body
    if (body === undefined) req.end()
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body)
    else body.pipe(req)
  })
}

export function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A handler that answers with a fly-replay header once per request that has no fly-replay-src. */
export function replayWith (value: string, status = 307): MachineHandler {
  return (req, res) => {
    if (req.headers['fly-replay-src'] !== undefined || req.headers['fly-replay-failed'] !== undefined) return false
    res.writeHead(status, { 'fly-replay': value, 'content-type': 'text/plain', 'set-cookie': 'replay=1' })
    res.end('replaying\n')
    return true
  }
}

/** Resolves with the fields of a `k=v;k=v` header. */
export function fields (value: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of String(value).split(';')) {
    const eq = part.indexOf('=')
    out[part.slice(0, eq)] = part.slice(eq + 1)
  }
  return out
}

export async function startEdge (t: Teardown, options: FlyEdgeOptions): Promise<FlyEdge> {
  const edge = new FlyEdge(options)
  await edge.listen()
  t.teardown(() => edge.close())
  return edge
}

export function spec (machine: TestMachine, region = 'iad', app?: string): MachineSpec {
  return { id: machine.id, url: machine.url, region, app }
}

/** A launcher that only records its calls (the test's Machines keep running; the edge decides reachability). */
export function recordingLauncher (): MachineLauncher & { calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    start: async (id) => { calls.push(`start ${id}`) },
    stop: async (id) => { calls.push(`stop ${id}`) },
    suspend: async (id) => { calls.push(`suspend ${id}`) },
    resume: async (id) => { calls.push(`resume ${id}`) }
  }
}

/** Every 'route' event of the edge from now on. */
export function routesOf (edge: FlyEdge): RouteEvent[] {
  const routes: RouteEvent[] = []
  edge.on('route', (event: RouteEvent) => routes.push(event))
  return routes
}

/** How a TCP connection to `url` ends: 'connected' (then closed by us), or the error code, with the time it took. */
export function tcpConnect (url: string, timeoutMs = 2000): Promise<{ outcome: string, ms: number }> {
  const started = Date.now()
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname)
    const done = (outcome: string): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ outcome, ms: Date.now() - started })
    }
    const timer = setTimeout(() => done('hang'), timeoutMs)
    socket.once('connect', () => done('connected'))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
  })
}
