import { createHash } from 'node:crypto'
import { createServer, request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { freePort, reservePort, startSite, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// Shared by the fly-fidelity-*.test.ts files: several real `navigator` processes that are Machines of one app (each
// with FLY_MACHINE_ID, and `peers` naming the others' addresses), whose tenant counts the requests it serves.

interface Teardown { teardown (fn: () => unknown): void }

export const COOKIE = '_navigator_machine'
export const MB = 1_000_000

/**
 * The tenant of every Machine: one log line per request it serves ("served <machine> ..."), which Navigator logs
 * with the tenant's name, and a JSON answer saying which Machine served it and what arrived.
 */
const COUNTING_APP = `
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
const machine = process.env.MACHINE
createServer((req, res) => {
  const hash = createHash('sha256')
  let size = 0
  req.on('data', (chunk) => { size += chunk.length; hash.update(chunk) })
  req.on('end', () => {
    const sha256 = hash.digest('hex')
    console.log(['served', machine, req.method, req.url, size].join(' '))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ machine, method: req.method, url: req.url, size, sha256, headers: req.headers }))
  })
}).listen(Number(process.env.PORT), '127.0.0.1')
`

export interface MachineOptions {
  /** Lines under `sticky_sessions:` besides `enabled`, `paths` and `peers` (unindented). */
  sticky?: string[]
  /** Lines under `routes.fly:` besides `sticky_sessions` (unindented). */
  fly?: string[]
  /** Peers that are not Machines started here: id -> URL. */
  extraPeers?: Record<string, string>
  env?: NodeJS.ProcessEnv
}

export interface Machine extends Running {
  id: string
}

/**
 * Starts one navigator per id, each a Machine of the app `fidelity` in region `ord`, listening on a port known up
 * front so that every one's `peers` names all of them; sticky sessions on `/app/*` and `/api/*`, tenants `app` and
 * `api` of the counting app. `options[id]` adds keys per Machine.
 */
export async function startMachines (t: Teardown, ids: string[], options: Record<string, MachineOptions> = {}): Promise<Record<string, Machine>> {
  // Each Machine's port stays held until that Machine starts, so the tenants of the ones started before it cannot take it.
  const reserved = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await reservePort()] as const)))
  const ports = Object.fromEntries(ids.map((id) => [id, reserved[id].port]))
  const machines: Record<string, Machine> = {}
  t.teardown(async () => { await Promise.all(Object.values(reserved).map(async ({ release }) => { await release() })) })
  for (const id of ids) {
    const own = options[id] ?? {}
    const peers = { ...Object.fromEntries(ids.map((peer) => [peer, `http://127.0.0.1:${ports[peer]}`])), ...own.extraPeers }
    await reserved[id].release()
    const running = await startSite(t, {
      listen: `"127.0.0.1:${ports[id]}"`,
      routes: [
        '  fly:',
        ...(own.fly ?? []).map((line) => `    ${line}`),
        '    sticky_sessions:',
        '      enabled: true',
        '      paths: ["/app/*", "/api/*"]',
        ...(own.sticky ?? []).map((line) => `      ${line}`),
        '      peers:',
        ...Object.entries(peers).map(([peer, url]) => `        ${peer}: "${url}"`)
      ],
      tenants: [
        tenant('app', '/app', 'start: eager', 'command: node', 'args: [counting.mjs]', `env: { MACHINE: ${id} }`),
        tenant('api', '/api', 'start: eager', 'command: node', 'args: [counting.mjs]', `env: { MACHINE: ${id} }`)
      ]
    }, {
      env: { FLY_MACHINE_ID: id, FLY_APP_NAME: 'fidelity', FLY_REGION: 'ord', ...own.env },
      files: { 'counting.mjs': COUNTING_APP },
      warm: ['/app/warm-up', '/api/warm-up'],
      // The replay rules some tests add are skipped for a request a rule replayed here already.
      headers: { cookie: `${COOKIE}=${id}`, 'fly-replay-src': 'state=nav-rule' }
    })
    machines[id] = { ...running, id }
  }
  return machines
}

/** Requests of the harness itself: the warm-up, the tenants' readiness probe, and the markers of `served`. */
const HARNESS = / (?:\/up|\/(?:app|api)\/(?:warm-up|served-marker\?n=\d+)) \d+$/
let markers = 0

/**
 * The requests the Machine's tenants served, as "served <machine> <method> <url> <size>" lines, once every line
 * they wrote so far has arrived: each tenant serves a marker request first, and a tenant's lines arrive in order,
 * so when its marker's line is there, so is every line before it.
 */
export async function served (machine: Machine): Promise<string[]> {
  const headers = { cookie: `${COOKIE}=${machine.id}`, 'fly-replay-src': 'state=nav-rule' }
  for (const prefix of ['/app', '/api']) {
    const path = `${prefix}/served-marker?n=${++markers}`
    const answer = await send(machine.address, path, { headers })
    if (answer.status !== 200) throw new Error(`${path} answered ${answer.status}`)
    await machine.waitForLog((line) => line.msg === `served ${machine.id} GET ${path} 0`)
  }
  return machine.logs
    .filter((line) => typeof line.process === 'string' && typeof line.msg === 'string' && line.msg.startsWith('served ') && !HARNESS.test(line.msg))
    .map((line) => line.msg as string)
}

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  text: string
  json: () => any
}

/**
 * One request. A Buffer body is sent with its Content-Length; `chunked: true` sends it in pieces with
 * Transfer-Encoding: chunked (a body of unknown length). The answer is read even if the server answered before
 * reading the body.
 */
export async function send (address: string, path: string, options: { method?: string, headers?: Record<string, string>, body?: Buffer, chunked?: boolean } = {}): Promise<Reply> {
  const url = new URL(address)
  const body = options.body
  const headers: Record<string, string> = { ...options.headers }
  if (body !== undefined && options.chunked !== true) headers['content-length'] = String(body.length)
  return await new Promise((resolve, reject) => {
    let answered = false
    const req = request({ host: url.hostname, port: url.port, path, method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, agent: false }, (res) => {
      answered = true
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
      })
      res.on('error', reject)
    })
    // The server may answer (a replay, the maintenance page) and close before it read the whole body: that answer
    // counts. A write error without any answer within a bound fails the request.
    req.on('error', (err) => {
      setTimeout(() => { if (!answered) reject(err) }, 2_000).unref()
    })
    if (body === undefined) {
      req.end()
    } else if (options.chunked === true) {
      for (let at = 0; at < body.length; at += 65_536) req.write(body.subarray(at, at + 65_536))
      req.end()
    } else {
      req.end(body)
    }
  })
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

/** The sticky cookie a reply sets (its whole Set-Cookie line), or undefined. */
export function stickyCookie (reply: { headers: IncomingHttpHeaders }): string | undefined {
  return (reply.headers['set-cookie'] ?? []).find((line) => line.startsWith(`${COOKIE}=`))
}

export interface Recorder {
  url: string
  requests: Array<{ method: string, url: string, headers: IncomingHttpHeaders, size: number, sha256: string }>
}

/** A plain HTTP server that records every request (headers, body size and hash) and answers 200 with JSON. */
export async function startRecorder (t: Teardown): Promise<Recorder> {
  const requests: Recorder['requests'] = []
  const server = createServer((req, res) => {
    const hash = createHash('sha256')
    let size = 0
    req.on('data', (chunk: Buffer) => { size += chunk.length; hash.update(chunk) })
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, size, sha256: hash.digest('hex') })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ recorded: requests.length }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

/** The address of a port nobody listens on: a Machine that is stopped or suspended has no address on the private network. */
export async function deadAddress (): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`
}
