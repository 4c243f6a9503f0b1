// The 1 MB replay limit and the loop marker through the edge and real navigator Machines, counted at the tenants.
// Fly cannot replay a request larger than 1 MB, which is 1,000,000 bytes: a body of exactly that is replayed by the
// edge, one byte more (or a chunked body of unknown length) is proxied by the Machine it landed on to the cookie's
// Machine over the private network, and `routes.fly.max_replay_body` moves the line. With a replay rule and a sticky
// cookie that point at different Machines, a large body is served exactly once instead of bouncing between them.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type Test } from 'tap'
import { FlyEdge, type EdgeErrorEvent, type RouteEvent } from '../src/edge.js'
import { launchMachines, type LaunchedMachines } from '../src/launch.js'
import { request, sha256, type Reply } from './fixtures.js'
import { COOKIE, TEST_SHUTDOWN_TIMEOUT } from './e2e-helpers.js'

const APP = 'e2e-limit'
const M1 = '3d8d9d1ce01001'
const M2 = '3d8d9d1ce01002'
const IDS = [M1, M2]
const MB = 1_000_000

/** Every Machine's tenant: a line per request it serves ("served <machine> <method> <url> <size>"), and a JSON answer. */
const COUNTING_TENANT = `
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
const machine = process.env.FLY_MACHINE_ID
createServer((req, res) => {
  const hash = createHash('sha256')
  let size = 0
  req.on('data', (chunk) => { size += chunk.length; hash.update(chunk) })
  req.on('end', () => {
    console.log(['served', machine, req.method, req.url, size].join(' '))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ machine, size, sha256: hash.digest('hex'), headers: req.headers }))
  })
}).listen(Number(process.env.PORT), '127.0.0.1')
`

interface Fly {
  edge: FlyEdge
  launched: LaunchedMachines
  output: string[]
  routes: RouteEvent[]
  replays: Array<{ issuer: string }>
  edgeErrors: EdgeErrorEvent[]
}

/** Two Machines of the counting tenant on /app and /api, sticky on both; `fly` adds lines under routes.fly. */
async function startFly (t: Test, fly: string[] = []): Promise<Fly> {
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-limit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'counting.mjs'), COUNTING_TENANT)
  const tenant = (name: string): string[] => [
    `    - name: ${name}`, `      path: /${name}`, `      working_dir: ${dir}`, '      command: node', '      args: [counting.mjs]', '      start: eager'
  ]
  const config = join(dir, 'navigator.yml')
  await writeFile(config, [
    'server:', '  listen: "127.0.0.1:3000"', `  shutdown_timeout: ${TEST_SHUTDOWN_TIMEOUT}`,
    'routes:', '  fly:', ...fly.map((line) => `    ${line}`),
    '    sticky_sessions:', '      enabled: true', `      cookie_name: ${COOKIE}`, '      paths: ["/app/*", "/api/*"]',
    '      fallback_mode: maintenance', '      replay_timeout: 5s',
    'applications:', '  start_port: 4100', '  idle_timeout: 0s', '  tenants:', ...tenant('app'), ...tenant('api'), ''
  ].join('\n'))
  const output: string[] = []
  const launched = await launchMachines({
    config,
    count: IDS.length,
    app: APP,
    ids: IDS,
    regions: ['iad', 'ord'],
    env: { LOG_LEVEL: 'info' },
    onOutput: (id, line) => { output.push(`[${id}] ${line}`) }
  })
  t.teardown(() => launched.stop())
  const edge = new FlyEdge({ app: APP, machines: launched.machines, launcher: launched.launcher, flycastPorts: launched.flycastPorts })
  await edge.listen()
  t.teardown(() => edge.close())
  const state: Fly = { edge, launched, output, routes: [], replays: [], edgeErrors: [] }
  edge.on('route', (event: RouteEvent) => state.routes.push(event))
  edge.on('replay', (event: { issuer: string }) => state.replays.push({ issuer: event.issuer }))
  edge.on('edge-error', (event: EdgeErrorEvent) => state.edgeErrors.push(event))
  return state
}

/** The `served ...` lines of a Machine's tenants (Navigator logs each tenant output line as its `msg`). */
function servedLines (fly: Fly, id: string): string[] {
  const lines: string[] = []
  for (const line of fly.output) {
    if (!line.startsWith(`[${id}] `)) continue
    try {
      const msg = (JSON.parse(line.slice(line.indexOf(' ') + 1)) as { msg?: unknown }).msg
      if (typeof msg === 'string' && msg.startsWith('served ')) lines.push(msg)
    } catch {
      // Not a JSON log line.
    }
  }
  return lines
}

let markers = 0
/**
 * What each Machine's tenants served for requests whose URL contains `tag`, once every line they wrote so far has
 * arrived: each tenant first serves a marker request and its lines arrive in order.
 */
async function served (fly: Fly, tag: string): Promise<Record<string, string[]>> {
  for (const id of IDS) {
    for (const prefix of ['/app', '/api']) {
      const path = `${prefix}/marker?n=${++markers}`
      // Straight to the Machine, as a replay rule's own replay arrives, so that no rule sends it elsewhere.
      const machineUrl = fly.edge.machine(id)?.url.origin as string
      const reply = await request(machineUrl + path, { headers: { cookie: `${COOKIE}=${id}`, 'fly-replay-src': `instance=${id};state=nav-rule` } })
      if (reply.status !== 200) throw new Error(`${path} on ${id} answered ${reply.status}`)
      const deadline = Date.now() + 10_000
      while (!servedLines(fly, id).includes(`served ${id} GET ${path} 0`)) {
        if (Date.now() > deadline) throw new Error(`no line for ${path} from ${id}`)
        await sleep(20)
      }
    }
  }
  return Object.fromEntries(IDS.map((id) => [id, servedLines(fly, id).filter((line) => line.includes(tag))]))
}

/**
 * A POST that lands on Machine `at` (the edge's `fly-prefer-instance-id`, as a load balancer could have chosen it)
 * with the sticky cookie naming `cookie`.
 */
function post (fly: Fly, path: string, body: Buffer, at: string, cookie: string, chunked = false): Promise<Reply> {
  return request(fly.edge.url + path, {
    method: 'POST',
    // A stream is sent with Transfer-Encoding: chunked, a Buffer with its Content-Length.
    body: chunked ? Readable.from([body.subarray(0, body.length >> 1), body.subarray(body.length >> 1)]) : body,
    headers: { 'content-type': 'application/octet-stream', 'fly-prefer-instance-id': at, cookie: `${COOKIE}=${cookie}` }
  })
}

interface Served { machine: string, size: number, sha256: string, headers: Record<string, string> }

/** The events of the edge during one request. */
async function traced (fly: Fly, send: () => Promise<Reply>): Promise<{ reply: Reply, routes: RouteEvent[], replays: Array<{ issuer: string }>, errors: EdgeErrorEvent[] }> {
  const at = { routes: fly.routes.length, replays: fly.replays.length, errors: fly.edgeErrors.length }
  const reply = await send()
  return { reply, routes: fly.routes.slice(at.routes), replays: fly.replays.slice(at.replays), errors: fly.edgeErrors.slice(at.errors) }
}

test('sticky sessions through the edge: 1,000,000 bytes are replayed by the edge, 1,000,001 bytes and a chunked body go direct', async (t) => {
  const fly = await startFly(t)

  const atLimit = randomBytes(MB)
  const replayed = await traced(fly, () => post(fly, '/app/upload?case=at-limit', atLimit, M1, M2))
  t.equal(replayed.reply.status, 200)
  t.match(replayed.reply.json<Served>(), { machine: M2, size: MB, sha256: sha256(atLimit) }, 'byte-identical, on the cookie\'s Machine')
  t.same(replayed.replays, [{ issuer: M1 }], 'the Machine it landed on answered with fly-replay, and the edge replayed it')
  t.same(replayed.routes.map((r) => [r.machineId, r.replayed]), [[M1, false], [M2, true]], 'delivered to M1, then replayed to M2')
  t.match(replayed.reply.json<Served>().headers['fly-replay-src'], new RegExp(`^instance=${M1};`), 'with fly-replay-src')

  const over = randomBytes(MB + 1)
  const direct = await traced(fly, () => post(fly, '/app/upload?case=over-limit', over, M1, M2))
  t.equal(direct.reply.status, 200)
  t.match(direct.reply.json<Served>(), { machine: M2, size: MB + 1, sha256: sha256(over) }, 'byte-identical, on the cookie\'s Machine')
  t.equal(direct.reply.json<Served>().headers['x-navigator-via'], M1, 'proxied by M1 over the private network')
  t.same(direct.replays, [], 'never replayed')
  t.same(direct.routes.map((r) => r.machineId), [M1], 'the edge delivered it once, to M1')

  const small = randomBytes(10_000)
  const chunked = await traced(fly, () => post(fly, '/app/upload?case=chunked', small, M1, M2, true))
  t.equal(chunked.reply.status, 200, 'a body of unknown length cannot be replayed, however small')
  t.match(chunked.reply.json<Served>(), { machine: M2, size: small.length, sha256: sha256(small) })
  t.same(chunked.replays, [])
  t.same([...replayed.errors, ...direct.errors, ...chunked.errors], [], 'no edge errors')

  const counts = await served(fly, '?case=')
  t.same(counts[M1], [], 'M1 served none of them')
  t.same(counts[M2], [
    `served ${M2} POST /app/upload?case=at-limit ${MB}`,
    `served ${M2} POST /app/upload?case=over-limit ${MB + 1}`,
    `served ${M2} POST /app/upload?case=chunked ${small.length}`
  ], 'M2 served each exactly once')
})

test('routes.fly.max_replay_body is honoured through the edge', async (t) => {
  const fly = await startFly(t, ['max_replay_body: 1000'])
  const at = randomBytes(1000)
  const replayed = await traced(fly, () => post(fly, '/app/form?case=max-at', at, M1, M2))
  t.match(replayed.reply.json<Served>(), { machine: M2, size: 1000, sha256: sha256(at) })
  t.same(replayed.replays, [{ issuer: M1 }], '1000 bytes: replayed by the edge')
  const over = randomBytes(1001)
  const direct = await traced(fly, () => post(fly, '/app/form?case=max-over', over, M1, M2))
  t.match(direct.reply.json<Served>(), { machine: M2, size: 1001, sha256: sha256(over) })
  t.equal(direct.reply.json<Served>().headers['x-navigator-via'], M1)
  t.same(direct.replays, [], '1001 bytes: proxied, though the edge itself could have replayed it')
  t.same([...replayed.errors, ...direct.errors], [])
  const counts = await served(fly, '?case=max-')
  t.same(counts[M1], [])
  t.same(counts[M2], [`served ${M2} POST /app/form?case=max-at 1000`, `served ${M2} POST /app/form?case=max-over 1001`])
})

test('a replay rule, a sticky cookie for the other Machine and a large body, through the edge: served exactly once', async (t) => {
  // Both Machines send /api/ to M2 by rule; the user's cookie names M1, and /api/* is sticky too. Without the loop
  // marker, M2's sticky step would send the body back to M1, whose rule would send it to M2 again, and so on. A request
  // that lands on M2 first stays there: the rule's routing stands, as it does for one the rule sent there.
  // The cookie is left on M1 for the paths the rule does not cover.
  const fly = await startFly(t, ['replay:', '  - path: "^/api/"', `    machine: ${M2}`])
  const cases: Array<{ tag: string, at: string, size: number, chunked?: boolean }> = [
    { tag: 'large-at-m1', at: M1, size: MB + 1 },
    { tag: 'large-at-m2', at: M2, size: MB + 1 },
    { tag: 'chunked-at-m1', at: M1, size: 5000, chunked: true },
    { tag: 'small-at-m1', at: M1, size: 5000 },
    { tag: 'small-at-m2', at: M2, size: 5000 }
  ]
  for (const { tag, at, size, chunked } of cases) {
    const body = randomBytes(size)
    const { reply, replays, errors } = await traced(fly, () => post(fly, `/api/orders?case=${tag}`, body, at, M1, chunked))
    t.equal(reply.status, 200, `${tag}: served`)
    t.match(reply.json<Served>(), { machine: M2, size, sha256: sha256(body) }, `${tag}: where the rule sends it, byte-identical`)
    t.ok(replays.length <= 1, `${tag}: replayed at most once (${replays.length})`)
    t.same(errors, [], `${tag}: no edge error`)
    t.notMatch(reply.headers['set-cookie']?.join('\n') ?? '', COOKIE, `${tag}: the cookie left on M1`)
  }
  const counts = await served(fly, '?case=')
  t.same(counts[M1], [], 'M1 served none of them')
  t.same(counts[M2], cases.map(({ tag, size }) => `served ${M2} POST /api/orders?case=${tag} ${size}`), 'M2 served each exactly once')
})
