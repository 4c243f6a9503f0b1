// Processes dying or being signalled while clients keep sending requests: kill -9 of a tenant and of a standalone
// server, SIGHUP reloads under load. Real navigator processes and real children; every request is bounded, so a
// hang fails the test instead of stalling it.
import { Agent, request } from 'node:http'
import { test } from 'tap'
import { CABLE_APP, http, reservePort, siteConfig, startNavigator, startSite, tempDir, tenant, tenantStartPort, writeConfig } from './helpers.js'
import type { Site } from './helpers.js'

/** A request without an answer after this long counts as a hang. */
const HANG_MS = 5000

interface Outcome { path: string, status: number, error: string | null, ms: number, body: string, at: number }

/** One GET with a bound; failures are outcomes, not exceptions. */
async function get (address: string, path: string, agent: Agent | false): Promise<Outcome> {
  const url = new URL(address)
  const started = Date.now()
  return await new Promise((resolve) => {
    let settled = false
    const done = (status: number, error: string | null, body: string): void => {
      if (settled) return
      settled = true
      clearTimeout(limit)
      resolve({ path, status, error, body, ms: Date.now() - started, at: started })
    }
    const req = request({ host: url.hostname, port: url.port, path, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { done(res.statusCode ?? 0, res.complete ? null : 'incomplete', Buffer.concat(chunks).toString()) })
      res.on('error', (err) => { done(res.statusCode ?? 0, err.message, '') })
    })
    const limit = setTimeout(() => { req.destroy(); done(0, 'hang', '') }, HANG_MS)
    req.on('error', (err) => { done(0, err.message, '') })
    req.end()
  })
}

/** `workers` clients sending `paths` in turn, back to back, until stop() is called; resolves every outcome. */
function load (address: string, paths: string[], workers: number, agent: Agent | false): { outcomes: Outcome[], stop: () => Promise<Outcome[]> } {
  const outcomes: Outcome[] = []
  let running = true
  const loops = Array.from({ length: workers }, async (_, w) => {
    let i = w
    while (running) {
      outcomes.push(await get(address, paths[i++ % paths.length], agent))
    }
  })
  return {
    outcomes,
    stop: async () => {
      running = false
      await Promise.all(loops)
      return outcomes
    }
  }
}

/** Resolves once `predicate` holds for the outcomes, or rejects after `ms`. */
async function until (outcomes: Outcome[], predicate: (all: Outcome[]) => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate(outcomes)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms (${outcomes.length} requests so far)`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function tally (outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const o of outcomes) {
    const key = o.error ?? String(o.status)
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}

test('kill -9 of a tenant under load: requests in the gap get a prompt 502/503, none hangs, and traffic recovers on a new process', async (t) => {
  const nav = await startSite(t, { applications: ['  startup_timeout: 20s'], tenants: [tenant('app', '/app')] })
  const first = await http(nav.address, '/app/')
  const pid = (JSON.parse(first.text) as { pid: number }).pid
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => { agent.destroy() })

  const traffic = load(nav.address, ['/app/a', '/app/b'], 8, agent)
  t.teardown(traffic.stop)
  await until(traffic.outcomes, (all) => all.filter((o) => o.status === 200).length >= 100, 10_000, '100 answers before the kill')
  const killedAt = Date.now()
  process.kill(pid, 'SIGKILL')
  const servedByNew = (o: Outcome): boolean => o.at > killedAt && o.status === 200 && !o.body.includes(`"pid":${pid},`)
  await until(traffic.outcomes, (all) => all.filter(servedByNew).length >= 100, 20_000, '100 answers from the restarted tenant')
  const outcomes = await traffic.stop()

  const counts = tally(outcomes)
  t.comment(`kill -9 of a tenant: ${outcomes.length} requests, ${JSON.stringify(counts)}`)
  t.equal(outcomes.filter((o) => o.error === 'hang').length, 0, 'no request hung')
  const unexpected = outcomes.filter((o) => !(o.error === null && [200, 502, 503].includes(o.status)))
  t.same(unexpected.map((o) => `${o.status} ${String(o.error)}`), [], 'every request got a complete 200, 502 or 503')
  const failed = outcomes.filter((o) => o.status !== 200)
  const slowest = Math.max(0, ...failed.map((o) => o.ms))
  t.ok(slowest < 2000, `every failure is prompt (slowest ${slowest} ms)`)
  // A request in flight at the kill may fail; one answered before it must not have.
  t.ok(failed.every((o) => o.at + o.ms >= killedAt), 'nothing failed before the kill')
  const last = outcomes.slice(-50)
  t.ok(last.every((o) => o.status === 200), 'the last 50 requests are all served')
  await nav.waitForLog((line) => line.process === 'app' && /exited unexpectedly/.test(String(line.msg)), 1000)
})

test('kill -9 of a standalone server under load: 503 maintenance while it is down, served again after its restart', async (t) => {
  const reserved = await reservePort()
  const port = reserved.port
  const dir = tempDir({
    'navigator.yml': [
      'server:',
      '  listen: "127.0.0.1:0"',
      'applications:',
      '  standalone_servers:',
      '    - name: cable',
      '      match_path: /cable',
      '      command: node',
      `      args: [${JSON.stringify(CABLE_APP)}, "${port}"]`,
      `      port: ${port}`,
      ''
    ].join('\n')
  })
  await reserved.release()
  const nav = await startNavigator(t, dir)
  const starting = await nav.waitForLog((line) => line.msg === 'standalone server starting')
  await nav.waitForLog((line) => line.msg === 'standalone server ready')
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => { agent.destroy() })

  const traffic = load(nav.address, ['/cable'], 8, agent)
  t.teardown(traffic.stop)
  await until(traffic.outcomes, (all) => all.length >= 100, 10_000, '100 answers before the kill')
  const killedAt = Date.now()
  process.kill(starting.pid as number, 'SIGKILL')
  await until(traffic.outcomes, (all) => all.some((o) => o.at > killedAt && o.status === 503), 5000, 'a 503 while down')
  await nav.waitForLog((line) => line.msg === 'standalone server ready' && (line.pid === undefined || line.pid !== starting.pid) &&
    nav.logs.filter((l) => l.msg === 'standalone server ready').length >= 2, 10_000)
  const readyAt = Date.now()
  await until(traffic.outcomes, (all) => all.filter((o) => o.at > readyAt && o.status === 200).length >= 100, 10_000, '100 answers after the restart')
  const outcomes = await traffic.stop()

  const counts = tally(outcomes)
  t.comment(`kill -9 of a standalone server: ${outcomes.length} requests, ${JSON.stringify(counts)}`)
  t.equal(outcomes.filter((o) => o.error === 'hang').length, 0, 'no request hung')
  const unexpected = outcomes.filter((o) => !(o.error === null && [200, 502, 503].includes(o.status)))
  t.same(unexpected.map((o) => `${o.status} ${String(o.error)}`), [], 'every request got a complete 200, 502 or 503')
  const down = outcomes.filter((o) => o.status !== 200)
  t.ok(down.filter((o) => o.status === 503).length >= 1, 'the maintenance page was served while it was down')
  const slowest = Math.max(0, ...down.map((o) => o.ms))
  t.ok(slowest < 2000, `every 503 is prompt (slowest ${slowest} ms)`)
  t.ok(outcomes.filter((o) => o.at > readyAt + 500).every((o) => o.status === 200), 'once it is back, every request is served')
})

test('SIGHUP reloads under load: three reloads while 8 clients send requests, zero failed requests', async (t) => {
  const startPort = tenantStartPort()
  const site = (greeting: string): Site => ({
    routes: ['  rewrites:', '    - pattern: "^/greeting$"', `      rewrite: "/${greeting}.txt"`],
    startPort,
    tenants: [tenant('app', '/app')]
  })
  const nav = await startSite(t, site('one'), { files: { 'public/one.txt': 'one\n', 'public/two.txt': 'two\n' } })
  t.equal((await http(nav.address, '/app/warm')).status, 200)
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => { agent.destroy() })

  // Half through fresh connections, half through kept-alive ones: both kinds must survive a reload.
  const kept = load(nav.address, ['/app/a', '/greeting', '/app/slow?ms=50'], 4, agent)
  t.teardown(kept.stop)
  const fresh = load(nav.address, ['/app/b', '/greeting'], 4, false)
  t.teardown(fresh.stop)
  for (let reload = 1; reload <= 3; reload++) {
    await until(kept.outcomes, (all) => all.length >= reload * 100, 10_000, `traffic before reload ${reload}`)
    writeConfig(nav.dir, await siteConfig(site(reload % 2 === 1 ? 'two' : 'one')))
    nav.child.kill('SIGHUP')
    await nav.waitForLog((line) => line.msg === 'configuration reloaded' &&
      nav.logs.filter((l) => l.msg === 'configuration reloaded').length >= reload, 10_000)
  }
  await until(kept.outcomes, (all) => all.length >= 400, 10_000, 'traffic after the last reload')
  const outcomes = [...await kept.stop(), ...await fresh.stop()]

  t.comment(`SIGHUP under load: ${outcomes.length} requests, ${JSON.stringify(tally(outcomes))}`)
  const failed = outcomes.filter((o) => o.error !== null || o.status !== 200)
  t.same(failed.map((o) => `${o.path}: ${o.status} ${String(o.error)}`), [], 'zero failed requests')
  const greetings = new Set(outcomes.filter((o) => o.path === '/greeting').map((o) => o.body))
  t.same([...greetings].sort(), ['one\n', 'two\n'], 'both configurations answered')
  t.equal((await http(nav.address, '/greeting')).text, 'two\n', 'the last configuration is in effect')
})
