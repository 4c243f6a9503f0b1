// A user pinned to a Machine that is then destroyed, through the edge and three real navigator Machines that find
// each other the way they do on Fly: DNS discovery, the TXT record of `all.vms.<app>.internal`, answered here by a
// small DNS server that lists the Machines the edge still has. The edge answers a replay to the destroyed Machine
// with `fly-replay-failed: ...;reason=no_candidate`, the Machine that issued it applies fallback_mode and asks
// discovery to look again at once, so its next request with the stale cookie starts a new session instead of
// waiting for the 30 s refresh.
import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { test, type Test } from 'tap'
import { FlyEdge, type ReplayFailedEvent, type RouteEvent } from '../src/edge.js'
import { launchMachines } from '../src/launch.js'
import { request, type Reply } from './fixtures.js'
import {
  COOKIE, CookieJarClient, DEMO_CONFIG, DEMO_DIR, demoConfig, startDemoFly, TEST_SHUTDOWN_TIMEOUT, traced, waitForLogLines, type DemoFly
} from './e2e-helpers.js'

const APP = 'e2e-gone'
const IDS = ['9080e6f1a10001', '9080e6f1a10002', '9080e6f1a10003']
const REGIONS = ['iad', 'ord', 'ams']
const DEBUG_HEADER = 'x-navigator-sticky'
const NO_CANDIDATE_REFRESH = 'sticky sessions: Fly found no candidate for the replay; refreshing Machine discovery'

interface DnsServer { port: number, queries: number[], close (): Promise<void> }

/** The name of a DNS question (labels from offset 12), and where the question ends. */
function question (packet: Buffer): { name: string, end: number } {
  const labels: string[] = []
  let at = 12
  while (at < packet.length && packet[at] !== 0) {
    labels.push(packet.subarray(at + 1, at + 1 + packet[at]).toString('latin1'))
    at += 1 + packet[at]
  }
  return { name: labels.join('.').toLowerCase(), end: at + 5 }
}

/**
 * A DNS server on 127.0.0.1 that answers TXT queries for `all.vms.<app>.internal` with `<id> <region>` entries of the
 * Machines `list()` gives at the time of each query (as Fly's internal DNS does), and NXDOMAIN for anything else.
 * `queries` holds the time of each query for that name.
 */
async function startDns (t: Test, list: () => string[]): Promise<DnsServer> {
  const socket = dgram.createSocket('udp4')
  const queries: number[] = []
  socket.on('message', (packet, peer) => {
    if (packet.length < 17) return
    const { name, end } = question(packet)
    const known = name === `all.vms.${APP}.internal`
    if (known) queries.push(Date.now())
    const header = Buffer.from(packet.subarray(0, 12))
    header.writeUInt16BE(0x8180 | (known ? 0 : 3), 2) // a response, recursion available; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(known ? 1 : 0, 6)
    header.writeUInt16BE(0, 8)
    header.writeUInt16BE(0, 10)
    const parts = [header, packet.subarray(12, end)]
    if (known) {
      const text = Buffer.from(list().join(','), 'latin1')
      const rdata = Buffer.concat([Buffer.from([text.length]), text])
      const answer = Buffer.alloc(12)
      answer.writeUInt16BE(0xc00c, 0) // the question's name
      answer.writeUInt16BE(16, 2) // TXT
      answer.writeUInt16BE(1, 4) // IN
      answer.writeUInt32BE(0, 6) // TTL 0: never cached
      answer.writeUInt16BE(rdata.length, 10)
      parts.push(answer, rdata)
    }
    socket.send(Buffer.concat(parts), peer.port, peer.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const server = { port: socket.address().port, queries, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) }
  t.teardown(() => server.close())
  return server
}

/**
 * The demo config with its sticky_sessions written as one flow mapping: the edge's launcher then adds no `peers`
 * (it adds them only to a block mapping), so each Machine discovers the others through DNS, as on Fly.
 */
async function dnsDiscoveryConfig (t: Test, dir: string, fallback: string): Promise<string> {
  let text = await readFile(DEMO_CONFIG, 'utf8')
  text = text.replace('public_dir: public', `public_dir: ${join(DEMO_DIR, 'public')}`)
  text = text.replaceAll('working_dir: .', `working_dir: ${DEMO_DIR}`)
  const block = /^ {4}sticky_sessions:\n(?: {6}.*\n| {8}.*\n)+/m
  if (!block.test(text)) throw new Error('the demo config has no sticky_sessions block')
  text = text.replace(block, `    sticky_sessions: { enabled: true, cookie_name: ${COOKIE}, paths: ["/app/*"], ` +
    `fallback_mode: ${fallback}, replay_timeout: 5s, debug_header: true }\n`)
  text = text.replace(/^server:[ \t]*\n/m, (section) => `${section}  shutdown_timeout: ${TEST_SHUTDOWN_TIMEOUT}\n`)
  const file = join(dir, 'navigator.yml')
  await writeFile(file, text)
  return file
}

async function startFly (t: Test, fallback: string): Promise<DemoFly & { dns: DnsServer }> {
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-gone-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  let edge: FlyEdge | null = null
  // Before the edge exists, the Machines being launched; then those the edge has.
  const dns = await startDns(t, () => edge === null
    ? IDS.map((id, i) => `${id} ${REGIONS[i]}`)
    : edge.machines().map((m) => `${m.id} ${m.region}`))
  // Every Machine's Node asks this server instead of the system's resolvers.
  const preload = join(dir, 'dns.mjs')
  await writeFile(preload, "import dns from 'node:dns'\nconst server = process.env.NAV_TEST_DNS\n" +
    'if (server) { dns.setServers([server]); dns.promises.setServers([server]) }\n')
  const output: string[] = []
  const launched = await launchMachines({
    config: await dnsDiscoveryConfig(t, dir, fallback),
    count: IDS.length,
    app: APP,
    ids: IDS,
    regions: REGIONS,
    env: {
      LOG_LEVEL: 'debug',
      NAV_TEST_DNS: `127.0.0.1:${dns.port}`,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(preload).href}`.trim()
    },
    onOutput: (id, line) => { output.push(`[${id}] ${line}`) }
  })
  t.teardown(() => launched.stop())
  const started = new FlyEdge({ app: APP, machines: launched.machines, launcher: launched.launcher, flycastPorts: launched.flycastPorts })
  edge = started
  await started.listen()
  t.teardown(() => started.close())
  const routes: RouteEvent[] = []
  started.on('route', (event: RouteEvent) => routes.push(event))
  return { edge: started, launched, routes, output, replays: [], edgeErrors: [], destroyed: new Set(), dns }
}

function send (fly: DemoFly, cookie: string | null): Promise<Reply> {
  return request(`${fly.edge.url}/app/whoami`, { headers: cookie === null ? {} : { cookie: `${COOKIE}=${cookie}` } })
}

/** Waits until `condition` holds (checked every 20 ms), for at most `timeoutMs`; returns whether it did. */
async function until (condition: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  return condition()
}

/** The Machines that the requests sent after `from` were first delivered to (neither a replay nor a fallback). */
function firstDeliveries (fly: DemoFly, from: number): string[] {
  return fly.routes.slice(from).filter((r) => !r.replayed && !r.fallback).map((r) => r.machineId)
}

for (const fallback of ['maintenance', 'route_to_available']) {
  test(`fallback_mode: ${fallback}: a user pinned to a Machine that is destroyed is re-routed, and discovery looks again at once`, async (t) => {
    const fly = await startFly(t, fallback)
    t.ok(await until(() => fly.dns.queries.length >= IDS.length), 'each Machine looked its peers up in DNS at start')

    const first = await send(fly, null)
    const pinned = first.json<{ machine: string }>().machine
    t.match(first.headers['set-cookie']?.join('\n') ?? '', `${COOKIE}=${pinned}`, 'pinned to the Machine that served the first visit')

    const failures: ReplayFailedEvent[] = []
    fly.edge.on('replay-failed', (event: ReplayFailedEvent) => failures.push(event))
    await fly.edge.destroyMachine(pinned)
    t.equal(fly.edge.machine(pinned), undefined, 'the edge no longer has it; DNS no longer lists it')
    const queriesBefore = fly.dns.queries.length
    const destroyedAt = Date.now()
    const routesBefore = fly.routes.length

    // Each remaining Machine's first request with the stale cookie: the replay finds no candidate and comes back.
    const answers = new Map<string, Reply[]>()
    for (let i = 0; i < 8 && [...answers.values()].filter((a) => a.length >= 2).length < 2; i++) {
      const at = fly.routes.length
      const queries = fly.dns.queries.length
      const reply = await send(fly, pinned)
      const machine = firstDeliveries(fly, at)[0]
      const seen = answers.get(machine) ?? []
      answers.set(machine, [...seen, reply])
      // A Machine's first answer to the stale cookie makes it ask DNS again right away: wait for that question.
      if (seen.length === 0) t.ok(await until(() => fly.dns.queries.length > queries), `${machine} asked DNS again at once`)
    }
    t.same([...answers.keys()].sort(), IDS.filter((id) => id !== pinned).sort(), 'the requests went to the two remaining Machines')
    t.ok(failures.length >= 1 && failures.every((f) => f.reason === 'no_candidate'), 'the edge handed each replay back with reason=no_candidate')
    for (const [machine, [firstAnswer, second]] of answers) {
      if (fallback === 'maintenance') {
        t.equal(firstAnswer.status, 503, `${machine}: the maintenance page first`)
        t.equal(firstAnswer.headers[DEBUG_HEADER], `fallback; machine=${pinned}`)
        t.notMatch(firstAnswer.headers['set-cookie']?.join('\n') ?? '', COOKIE, 'the cookie kept')
      } else {
        t.equal(firstAnswer.status, 200, `${machine}: served there`)
        t.equal(firstAnswer.headers[DEBUG_HEADER], `re-pinned; machine=${machine}`)
        t.equal(firstAnswer.json<{ machine: string }>().machine, machine)
      }
      // Its discovery looked again at once (the periodic refresh is 30 s away), and no longer lists the Machine:
      // the same stale cookie is now refused as naming no Machine, and a new session starts there.
      t.ok(second !== undefined, `${machine} answered a second request`)
      t.equal(second?.status, 200)
      t.equal(second?.headers[DEBUG_HEADER], `rejected=machine-unknown; machine=${machine}`, `${machine}: the stale cookie names no Machine now`)
      t.match(second?.headers['set-cookie']?.join('\n') ?? '', `${COOKIE}=${machine}`, 'a new session cookie')
    }
    t.ok(fly.dns.queries.length - queriesBefore >= 2, `the two Machines asked DNS again (${fly.dns.queries.length - queriesBefore} queries)`)
    t.ok(Date.now() - destroyedAt < 25_000, 'all of it well before the 30 s periodic refresh')
    const lines = await waitForLogLines(fly, NO_CANDIDATE_REFRESH, 2)
    t.equal(lines.length, 2, 'each said at debug level why it looked again, once')
    t.ok(lines.every((line) => line.includes(`"machine":"${pinned}"`)))
    t.ok(fly.routes.slice(routesBefore).every((r) => r.machineId !== pinned), 'nothing was delivered to the destroyed Machine')

    // A new visitor is never pinned to it either.
    const fresh = await send(fly, null)
    t.not(fresh.json<{ machine: string }>().machine, pinned)
  })
}

// With `direct_proxy: flycast`, a body too large to replay goes through Fly's proxy with fly-force-instance-id. For a
// destroyed Machine that discovery still lists (static peers here, as until a DNS refresh) Fly's proxy answers with
// its own error and delivers nowhere else; Navigator passes that answer on: the body is gone, nothing can be retried.
// The next request that can be replayed finds no candidate and gets fallback_mode.
test('direct_proxy: flycast: a large upload pinned to a destroyed but still listed Machine gets Fly\'s error as it is; the next small request the fallback', async (t) => {
  const config = await demoConfig(t, [['replay_timeout: 5s', 'replay_timeout: 5s\n      direct_proxy: flycast\n      debug_header: true']])
  const fly = await startDemoFly(t, { config })
  const client = new CookieJarClient(fly.edge.url)
  const pinned = (await client.get('/app/whoami')).json<{ machine: string }>().machine
  await fly.edge.destroyMachine(pinned)

  const body = randomBytes(2_000_000)
  const { reply, routes, edgeErrors } = await traced(fly, () => client.get('/app/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } }))
  t.equal(reply.status, 502, 'Fly\'s proxy error')
  t.equal(reply.headers['fly-edge-error'], 'NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE', 'passed on as the proxy gave it')
  t.same(edgeErrors.map((e) => e.code), ['NAV_FLY_EDGE_FORCED_INSTANCE_UNAVAILABLE'])
  t.ok(routes.every((r) => r.machineId !== pinned), 'delivered nowhere else')
  t.equal(client.cookie, pinned, 'the cookie is unchanged')

  const next = await traced(fly, () => client.get('/app/whoami'))
  t.equal(next.reply.status, 503, 'fallback_mode: maintenance')
  t.equal(next.reply.headers[DEBUG_HEADER], `fallback; machine=${pinned}`)
  t.ok(next.routes.some((r) => r.fallback), 'after the edge handed the replay back')
})
