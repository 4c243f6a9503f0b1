// A whole Machine dying (kill -9 of Navigator and its children) or being stopped (SIGTERM) while clients keep
// sending requests through the edge to three real navigator Machines.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { request } from 'node:http'
import { join } from 'node:path'
import { test, type Test } from 'tap'
import { COOKIE, demoConfig, startDemoFly, type DemoFly } from './e2e-helpers.js'

const IDS = ['m-one', 'm-two', 'm-three']
const VICTIM = 'm-one'
/** A request without an answer after this long counts as a hang. */
const HANG_MS = 8000

// The demo tenant plus a slow endpoint, so a request can be in flight when its Machine is told to stop.
const TENANT = `
import { createServer } from 'node:http'
const machine = process.env.FLY_MACHINE_ID
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (url.pathname === '/app/slow') {
    console.log('slow request started')
    setTimeout(() => { res.end('slow done on ' + machine) }, Number(url.searchParams.get('ms') ?? 1000))
    return
  }
  req.resume()
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ machine }))
})
server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => { server.close(() => process.exit(0)) })
`

async function faultConfig (t: Test, fallbackMode = 'maintenance'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-faults-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const tenant = join(dir, 'faults-tenant.mjs')
  await writeFile(tenant, TENANT)
  return await demoConfig(t, [
    ['fallback_mode: maintenance', `fallback_mode: ${fallbackMode}`],
    ['args: [tenant.mjs]', `args: [${JSON.stringify(tenant)}]`]
  ])
}

interface Outcome { pinned: boolean, status: number, error: string | null, ms: number, at: number, body: string, cookie: string | null }

async function get (base: string, path: string, cookie: string | null): Promise<Outcome> {
  const started = Date.now()
  return await new Promise((resolve) => {
    let settled = false
    const done = (status: number, error: string | null, body: string, setCookie: string[] | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(limit)
      const ours = (setCookie ?? []).map((c) => c.split(';')[0]).find((pair) => pair.startsWith(`${COOKIE}=`))
      resolve({ pinned: cookie !== null, status, error, ms: Date.now() - started, at: started, body, cookie: ours?.slice(COOKIE.length + 1) ?? null })
    }
    const headers = cookie === null ? {} : { cookie: `${COOKIE}=${cookie}` }
    const req = request(base + path, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { done(res.statusCode ?? 0, res.complete ? null : 'incomplete', Buffer.concat(chunks).toString(), res.headers['set-cookie']) })
      res.on('error', (err) => { done(res.statusCode ?? 0, err.message, '', undefined) })
    })
    const limit = setTimeout(() => { req.destroy(); done(0, 'hang', '', undefined) }, HANG_MS)
    req.on('error', (err) => { done(0, err.message, '', undefined) })
    req.end()
  })
}

/** Cookie-less clients and clients pinned to the victim, back to back, until stop(). */
function load (base: string, path: string, workers: { anonymous: number, pinned: number }): { outcomes: Outcome[], stop: () => Promise<Outcome[]> } {
  const outcomes: Outcome[] = []
  let running = true
  const loop = async (cookie: string | null): Promise<void> => {
    while (running) outcomes.push(await get(base, path, cookie))
  }
  const loops = [
    ...Array.from({ length: workers.anonymous }, async () => await loop(null)),
    ...Array.from({ length: workers.pinned }, async () => await loop(VICTIM))
  ]
  return { outcomes, stop: async () => { running = false; await Promise.all(loops); return outcomes } }
}

async function until (predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Navigator's pid: the one process whose arguments name the Machine's config file (its log lines carry no pid). */
async function navigatorPid (fly: DemoFly, id: string): Promise<number> {
  const file = fly.launched.configFiles[id]
  const rows = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).trim().split('\n')
  const pids = rows.filter((row) => row.trimEnd().endsWith(` ${file}`)).map((row) => Number(row.trim().split(/\s+/)[0]))
  if (pids.length !== 1) throw new Error(`expected one process running ${file}, found ${pids.length}`)
  return pids[0]
}

/** The pid and every descendant of it: a whole Machine's processes. */
function processTree (root: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).trim().split('\n')
    .map((row) => row.trim().split(/\s+/).map(Number))
  const tree = [root]
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of table) if (ppid === tree[i]) tree.push(pid)
  return tree
}

/** Running, as opposed to gone or a zombie (an orphan's zombie may never be reaped in a container). */
function alive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

function tally (outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const o of outcomes) {
    const key = `${o.pinned ? 'pinned' : 'anonymous'} ${o.error ?? o.status}`
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}

async function killMachineUnderLoad (t: Test, fallbackMode: string): Promise<{ fly: DemoFly, outcomes: Outcome[], killedAt: number }> {
  const fly = await startDemoFly(t, { config: await faultConfig(t, fallbackMode), ids: IDS, edge: { autostart: false } })
  const tree = processTree(await navigatorPid(fly, VICTIM))
  t.ok(tree.length >= 3, `the victim Machine runs ${tree.length} processes (navigator, tenant, cable)`)
  const traffic = load(fly.edge.url, '/app/whoami', { anonymous: 6, pinned: 2 })
  t.teardown(traffic.stop)
  await until(() => traffic.outcomes.length >= 150, 15_000, '150 requests before the kill')
  const killedAt = Date.now()
  for (const pid of tree) process.kill(pid, 'SIGKILL')
  await until(() => tree.every((pid) => !alive(pid)), 2000, 'the Machine is gone')
  const afterKill = (): Outcome[] => traffic.outcomes.filter((o) => o.at > killedAt + 200)
  await until(() => afterKill().length >= 300 && afterKill().filter((o) => o.pinned).length >= 20, 30_000, '300 requests, 20 of them pinned, after the kill')
  const outcomes = await traffic.stop()
  t.comment(`kill -9 of Machine ${VICTIM} (${fallbackMode}): ${outcomes.length} requests, ${JSON.stringify(tally(outcomes))}`)
  t.same(outcomes.filter((o) => o.error === 'hang').length, 0, 'no request hung')
  const before = outcomes.filter((o) => o.at + o.ms < killedAt)
  t.ok(before.every((o) => o.status === 200), 'every request answered before the kill was served')
  // Requests that started after the kill: a request in flight on the Machine at the moment it died is lost with it.
  const after = outcomes.filter((o) => o.at > killedAt)
  const anonymous = after.filter((o) => !o.pinned)
  t.ok(anonymous.length > 100)
  t.same(anonymous.filter((o) => o.status !== 200 || o.error !== null).map((o) => `${o.status} ${String(o.error)}`), [],
    `every cookie-less request after the kill was served by another Machine (${anonymous.length})`)
  t.ok(anonymous.every((o) => JSON.parse(o.body).machine !== VICTIM))
  const inFlight = outcomes.filter((o) => o.at <= killedAt && o.at + o.ms >= killedAt && o.status !== 200)
  t.comment(`requests in flight at the kill that failed: ${inFlight.length} (${inFlight.map((o) => o.error ?? o.status).join(', ')})`)
  t.ok(inFlight.length <= 8, 'at most one request per client was in flight and lost')
  return { fly, outcomes: after, killedAt }
}

test('kill -9 of a whole Machine under load: its pinned users get the maintenance page, everyone else is unaffected', async (t) => {
  const { outcomes } = await killMachineUnderLoad(t, 'maintenance')
  const pinned = outcomes.filter((o) => o.pinned)
  t.ok(pinned.length > 10)
  t.same([...new Set(pinned.map((o) => `${o.status} ${String(o.error)}`))], ['503 null'], `every pinned request after the kill got a 503 (${pinned.length})`)
  t.ok(pinned.every((o) => o.cookie === null), 'and the cookie still names the dead Machine (no Set-Cookie)')
  const slowest = Math.max(...pinned.map((o) => o.ms))
  // Below the demo's replay_timeout (5 s), and HANG_MS; room for a loaded machine.
  t.ok(slowest < 4500, `every 503 is prompt (slowest ${slowest} ms)`)
})

test('kill -9 of a whole Machine under load: with route_to_available its pinned users move to another Machine', async (t) => {
  const { outcomes } = await killMachineUnderLoad(t, 'route_to_available')
  const pinned = outcomes.filter((o) => o.pinned)
  t.ok(pinned.length > 10)
  t.same([...new Set(pinned.map((o) => `${o.status} ${String(o.error)}`))], ['200 null'], `every pinned request after the kill was served (${pinned.length})`)
  for (const o of pinned) {
    const machine = (JSON.parse(o.body) as { machine: string }).machine
    if (machine === VICTIM || o.cookie !== machine) t.fail(`served by ${machine} with cookie ${String(o.cookie)}`)
  }
  t.pass('each was served by a live Machine that the new cookie names')
})

test('SIGTERM of a Machine under load: its in-flight requests complete, and the edge answers new ones cleanly, never with a reset', async (t) => {
  const fly = await startDemoFly(t, { config: await faultConfig(t), ids: IDS, edge: { autostart: false } })
  const pid = await navigatorPid(fly, VICTIM)
  const started = (): number => fly.output.filter((line) => line.startsWith(`[${VICTIM}]`) && line.includes('slow request started')).length
  const slow = Array.from({ length: 4 }, async () => await get(fly.edge.url, '/app/slow?ms=1500', VICTIM))
  await until(() => started() === 4, 10_000, 'four slow requests in flight on the victim')
  const traffic = load(fly.edge.url, '/app/whoami', { anonymous: 6, pinned: 2 })
  t.teardown(traffic.stop)
  await until(() => traffic.outcomes.length >= 50, 10_000, 'traffic before SIGTERM')
  const termAt = Date.now()
  process.kill(pid, 'SIGTERM')
  await until(() => fly.output.some((line) => line.startsWith(`[${VICTIM}]`) && line.includes('"msg":"stopped"')), 10_000, 'the victim stops')
  await until(() => !alive(pid), 5000, 'the victim exits')
  const exitedAt = Date.now()
  await until(() => traffic.outcomes.filter((o) => o.at > exitedAt).length >= 100, 10_000, 'traffic after the exit')
  // The pinned clients are two of eight: on a loaded machine their requests after SIGTERM may not have come back yet.
  await until(() => traffic.outcomes.some((o) => o.pinned && o.at > termAt), 15_000, 'a pinned request sent after SIGTERM, answered')
  const outcomes = await traffic.stop()

  const inFlight = await Promise.all(slow)
  t.same(inFlight.map((o) => `${o.status} ${o.body}`), Array(4).fill(`200 slow done on ${VICTIM}`), 'the four requests in flight completed')
  t.comment(`SIGTERM of Machine ${VICTIM}: ${outcomes.length} requests, ${JSON.stringify(tally(outcomes))}`)
  t.same(outcomes.filter((o) => o.error !== null).map((o) => `${o.status} ${String(o.error)}`), [], 'no request was reset, cut or left hanging')
  const anonymous = outcomes.filter((o) => !o.pinned && o.at > termAt)
  t.ok(anonymous.every((o) => o.status === 200), `every cookie-less request after SIGTERM was served (${anonymous.length})`)
  const pinned = outcomes.filter((o) => o.pinned && o.at > termAt)
  t.ok(pinned.length > 0)
  t.same([...new Set(pinned.map((o) => o.status))], [503], `every new pinned request got the maintenance page (${pinned.length})`)
  const slowest = Math.max(...pinned.map((o) => o.ms))
  // Below the demo's replay_timeout (5 s), and HANG_MS; room for a loaded machine.
  t.ok(slowest < 4500, `promptly (slowest ${slowest} ms)`)
})
