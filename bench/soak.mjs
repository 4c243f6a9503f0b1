// Soak: mixed traffic through the local Fly edge and three real Navigator Machines running the demo, for a bounded
// time, counting every failed request and every lost upload byte, and sampling each Navigator's RSS and open
// descriptors every 10 s; hostile clients run beside it (issue 18). Not run in CI. Build first: npx pnpm@10.34.9 build.
//
//   node bench/soak.mjs [--minutes 5] [--get-clients 4] [--upload-clients 1] [--ws-clients 1] [--upload-mib 2]
//                       [--hostile-clients 4] [--hostile-every-ms 500] [--hostile-held 60] [--hostile-hold-s 30]
//
// Traffic, each kind in its own loop, back to back:
// - sticky GETs: cookie-jar clients on /app/whoami; a reply from another Machine than the cookie names is a failure;
//   the edge balances them, so most arrive on the wrong Machine first and are replayed (counted from the edge);
// - cookie-less GETs of the same page (spread over the Machines);
// - uploads of --upload-mib MiB with the cookie, Content-Length set (over 1 MiB: not replayable, so a Machine that
//   is not the pinned one proxies them directly); the tenant answers bytes + sha256, compared with what was sent;
// - WebSockets on /cable with the cookie: open, welcome from the pinned Machine, one echo, close.
//
// Hostile traffic, --hostile-clients loops of each kind (0: none), aimed at the Machines' own ports, not the edge:
// on Fly an attacker reaches Navigator through Fly's proxy, which would absorb some of this; straight at Navigator is
// the harder test. Each loop opens a connection every --hostile-every-ms while it holds fewer than --hostile-held,
// and never ends or closes one itself: each is destroyed --hostile-hold-s after it opened, whatever happened. So the
// client's own sockets are bounded, and a Navigator that kept what it should release would show up to that many
// extra descriptors per loop instead of none.
// - refused upgrades: WebSocket handshakes answered with plain HTTP (an upgrade of /nowhere: 404; of /cable with a
//   cookie naming another Machine: a replay answer; of /app/whoami: the tenant's 200, relayed as a refusal);
// - slowloris: a request line and one header, then a header line every 2 s, or nothing more, never the blank line;
// - aborted uploads: a POST to /app/upload announcing twice --upload-mib MiB, destroyed after the first half (with
//   a cookie naming this Machine or another: the tenant or the direct proxy to a peer sees the abort);
// - malformed requests: a garbage method, a header line without a colon, a NUL in the target, a control byte in a
//   header name; the 400 is read and the connection held.
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { FlyEdge, launchMachines } from '../packages/fly-edge/dist/index.js'
import { ROOT, machineDescription, median } from './lib.mjs'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    'get-clients': { type: 'string', default: '4' },
    'upload-clients': { type: 'string', default: '1' },
    'ws-clients': { type: 'string', default: '1' },
    'upload-mib': { type: 'string', default: '2' },
    'hostile-clients': { type: 'string', default: '4' },
    // One every 500 ms for 30 s fills a loop's 60 at a steady pace, rather than in bursts the 10 s samples would alias.
    'hostile-every-ms': { type: 'string', default: '500' },
    'hostile-held': { type: 'string', default: '60' },
    'hostile-hold-s': { type: 'string', default: '30' }
  }
})
const DURATION_MS = Number(values.minutes) * 60_000
const SAMPLE_MS = 10_000
const REQUEST_LIMIT_MS = 30_000
const COOKIE = '_navigator_machine'
const UPLOAD = randomBytes(Number(values['upload-mib']) * 1024 * 1024)
const UPLOAD_SHA = createHash('sha256').update(UPLOAD).digest('hex')

const stats = {
  sticky: { ok: 0, failed: 0 },
  anonymous: { ok: 0, failed: 0 },
  upload: { ok: 0, failed: 0, bytesSent: 0, bytesLost: 0 },
  websocket: { ok: 0, failed: 0 },
  failures: []
}
const NORMAL = ['sticky', 'anonymous', 'upload', 'websocket']

function fail (kind, detail) {
  stats[kind].failed++
  if (stats.failures.length < 20) stats.failures.push(`${kind} at ${Math.round((Date.now() - (endAt - DURATION_MS)) / 1000)} s: ${detail}`)
}

function cookieOf (headers) {
  for (const header of headers['set-cookie'] ?? []) {
    const pair = header.split(';')[0]
    if (pair.startsWith(`${COOKIE}=`)) return pair.slice(COOKIE.length + 1)
  }
  return null
}

function send (url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks = []
      res.on('data', (chunk) => chunks.push(chunk))
      res.on('end', () => {
        if (!res.complete) reject(new Error('incomplete response'))
        else resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() })
      })
      res.on('error', reject)
    })
    req.setTimeout(REQUEST_LIMIT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_LIMIT_MS} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

const running = () => Date.now() < endAt
let endAt = 0

async function stickyClient (base) {
  let cookie = null
  while (running()) {
    try {
      const reply = await send(`${base}/app/whoami`, { headers: cookie === null ? {} : { cookie: `${COOKIE}=${cookie}` } })
      const machine = reply.status === 200 ? JSON.parse(reply.body).machine : null
      if (reply.status !== 200) fail('sticky', `status ${reply.status}`)
      else if (cookie !== null && machine !== cookie) fail('sticky', `pinned to ${cookie}, served by ${machine}`)
      else stats.sticky.ok++
      cookie = cookieOf(reply.headers) ?? cookie
    } catch (err) { fail('sticky', err.message) }
  }
}

async function anonymousClient (base) {
  while (running()) {
    try {
      const reply = await send(`${base}/app/whoami`)
      if (reply.status === 200) stats.anonymous.ok++
      else fail('anonymous', `status ${reply.status}`)
    } catch (err) { fail('anonymous', err.message) }
  }
}

async function uploadClient (base) {
  const first = await send(`${base}/app/whoami`)
  const cookie = cookieOf(first.headers)
  while (running()) {
    stats.upload.bytesSent += UPLOAD.length
    try {
      const reply = await send(`${base}/app/upload`, {
        method: 'POST',
        headers: { cookie: `${COOKIE}=${cookie}`, 'content-type': 'application/octet-stream', 'content-length': String(UPLOAD.length) },
        body: UPLOAD
      })
      const result = reply.status === 200 ? JSON.parse(reply.body) : null
      if (result === null) {
        stats.upload.bytesLost += UPLOAD.length
        fail('upload', `status ${reply.status}`)
      } else if (result.bytes !== UPLOAD.length || result.sha256 !== UPLOAD_SHA || result.machine !== cookie) {
        stats.upload.bytesLost += Math.max(UPLOAD.length - result.bytes, result.sha256 === UPLOAD_SHA ? 0 : UPLOAD.length)
        fail('upload', `${result.bytes} bytes, sha256 ${result.sha256 === UPLOAD_SHA ? 'ok' : 'wrong'}, on ${result.machine}`)
      } else {
        stats.upload.ok++
      }
    } catch (err) {
      stats.upload.bytesLost += UPLOAD.length
      fail('upload', err.message)
    }
  }
}

function webSocketRound (base, cookie) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/cable`, { headers: { cookie: `${COOKIE}=${cookie}` } })
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no echo within 10 s')) }, 10_000)
    let welcomed = false
    ws.on('message', (data) => {
      const message = JSON.parse(String(data))
      if (message.machine !== cookie) { clearTimeout(timer); ws.terminate(); reject(new Error(`on ${message.machine}, pinned to ${cookie}`)); return }
      if (!welcomed) { welcomed = true; ws.send('ping'); return }
      if (message.data !== 'ping') { clearTimeout(timer); ws.terminate(); reject(new Error('wrong echo')); return }
      ws.close(1000)
    })
    ws.on('close', () => { clearTimeout(timer); resolve() })
    ws.on('error', (err) => { clearTimeout(timer); reject(err) })
    ws.on('unexpected-response', (_req, res) => { clearTimeout(timer); ws.terminate(); reject(new Error(`upgrade answered ${res.statusCode}`)) })
  })
}

async function webSocketClient (base) {
  const cookie = cookieOf((await send(`${base}/app/whoami`)).headers)
  while (running()) {
    try {
      await webSocketRound(base, cookie)
      stats.websocket.ok++
    } catch (err) { fail('websocket', err.message) }
  }
}

const HOSTILE_EVERY_MS = Number(values['hostile-every-ms'])
const HOSTILE_HELD = Number(values['hostile-held'])
const HOSTILE_HOLD_MS = Number(values['hostile-hold-s']) * 1000
const UPGRADE_HEADERS = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
const MALFORMED = [
  'GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /app/whoami HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
  'GET /app/\0whoami HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /app/whoami HTTP/1.1\r\nHost: x\r\nX-Bad\x01: a\r\n\r\n'
]

/** Each kind: given the connection's number and the Machine it goes to, what to do with the socket once open. */
const ATTACKS = {
  'refused upgrade': (n, machine, other) => (socket) => {
    const request = [
      `GET /nowhere HTTP/1.1\r\nHost: x\r\n${UPGRADE_HEADERS}\r\n`,
      `GET /cable HTTP/1.1\r\nHost: x\r\nCookie: ${COOKIE}=${other}\r\n${UPGRADE_HEADERS}\r\n`,
      `GET /app/whoami HTTP/1.1\r\nHost: x\r\nCookie: ${COOKIE}=${machine}\r\n${UPGRADE_HEADERS}\r\n`
    ][n % 3]
    socket.write(request)
  },
  slowloris: (n) => (socket) => {
    socket.write('GET /app/whoami HTTP/1.1\r\nHost: x\r\n')
    if (n % 2 === 1) return
    let line = 0
    const trickle = setInterval(() => {
      // Once Navigator has given up on it, the socket is only held: a write would draw a reset.
      if (socket.readableEnded || socket.destroyed) clearInterval(trickle)
      else socket.write(`X-Slow-${line++}: y\r\n`)
    }, 2_000)
    socket.once('close', () => clearInterval(trickle))
  },
  'aborted upload': (n, machine, other) => (socket, abort) => {
    // Announces twice the upload, sends the first half, and goes: the tenant (own cookie) or the direct proxy to a
    // peer (another Machine's cookie: over 1 MiB, so not replayed) has a request cut in the middle of its body.
    socket.write(`POST /app/upload HTTP/1.1\r\nHost: x\r\nCookie: ${COOKIE}=${n % 2 === 0 ? machine : other}\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${UPLOAD.length * 2}\r\n\r\n`)
    socket.write(UPLOAD, () => setTimeout(abort, 50))
  },
  malformed: (n) => (socket) => { socket.write(MALFORMED[n % MALFORMED.length], 'latin1') }
}

const hostile = Object.fromEntries(Object.keys(ATTACKS).map((kind) => [kind, {
  opened: 0, answers: {}, endedByNavigator: 0, heldToLimit: 0, aborted: 0, openAtEnd: 0, endMs: []
}]))
/** Destroys one held hostile socket, for each still open. */
const hostileSockets = new Set()

/**
 * One hostile connection. The socket never ends or closes from this side (allowHalfOpen: Node would otherwise
 * answer Navigator's FIN with its own), until `abort` or HOSTILE_HOLD_MS after it opened. Resolves once it is gone.
 */
function hostileConnection (kind, url, attack) {
  const record = hostile[kind]
  record.opened++
  const { hostname, port } = new URL(url)
  const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true })
  const opened = Date.now()
  let head = ''
  let endedBy = null
  const destroyHere = (why) => { if (endedBy === null) endedBy = why; socket.destroy() }
  const release = () => destroyHere('soak over')
  hostileSockets.add(release)
  const navigatorEnded = () => {
    if (endedBy !== null) return
    endedBy = 'navigator'
    record.endedByNavigator++
    record.endMs.push(Date.now() - opened)
  }
  socket.on('data', (chunk) => { if (head.length < 64) head += chunk.toString('latin1') })
  socket.on('error', () => {})
  socket.on('end', navigatorEnded)
  const limit = setTimeout(destroyHere, HOSTILE_HOLD_MS, 'limit')
  socket.once('connect', () => attack(socket, () => destroyHere('aborted')))
  return new Promise((resolve) => socket.once('close', () => {
    clearTimeout(limit)
    hostileSockets.delete(release)
    if (endedBy === null) navigatorEnded() // a reset
    if (endedBy === 'limit') record.heldToLimit++
    if (endedBy === 'aborted') record.aborted++
    if (endedBy === 'soak over') record.openAtEnd++
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 'none'
    record.answers[status] = (record.answers[status] ?? 0) + 1
    resolve()
  }))
}

/** Opens a connection every HOSTILE_EVERY_MS while it holds fewer than HOSTILE_HELD, to a Machine picked at random. */
async function hostileLoop (kind, machines, loop) {
  const held = new Set()
  let n = loop
  while (running()) {
    if (held.size < HOSTILE_HELD) {
      const at = Math.floor(Math.random() * machines.length)
      const machine = machines[at]
      const other = machines[(at + 1) % machines.length]
      const gone = hostileConnection(kind, machine.url, ATTACKS[kind](n++, machine.id, other.id))
      held.add(gone)
      gone.then(() => held.delete(gone))
    }
    await new Promise((resolve) => setTimeout(resolve, HOSTILE_EVERY_MS))
  }
  await Promise.all(held)
}

function descriptorCount (pid) {
  try { return readdirSync(`/proc/${pid}/fd`).length } catch { return null }
}

function rssMiB (pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))
    return Math.round(Number(line.split(/\s+/)[1]) / 1024 * 10) / 10
  } catch { return null }
}

/**
 * The pid of the process listening on 127.0.0.1:`port`, found through /proc: the listening socket's inode in
 * /proc/net/tcp, then the process holding it (log lines need not carry a pid; Navigator's children do not inherit
 * its listening socket).
 */
function listenerPid (port) {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const inodes = new Set()
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields[1]?.endsWith(hexPort) && fields[3] === '0A') inodes.add(`socket:[${fields[9]}]`)
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let fds
    try { fds = readdirSync(`/proc/${entry}/fd`) } catch { continue }
    for (const fd of fds) {
      try { if (inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry) } catch {}
    }
  }
  return null
}

const pids = new Map()
const listening = new Set()
const cableReady = new Set()
const launched = await launchMachines({
  config: join(ROOT, 'examples/demo/navigator.yml'),
  count: 3,
  app: 'soak',
  regions: ['iad', 'ord', 'ams'],
  env: { LOG_LEVEL: 'info' },
  onOutput: (id, line) => {
    if (line.includes('"msg":"listening"')) listening.add(id)
    if (line.includes('"msg":"standalone server ready"')) cableReady.add(id)
  }
})
const edge = new FlyEdge({ app: 'soak', machines: launched.machines, launcher: launched.launcher })
await edge.listen()
let replays = 0
let deliveries = 0
edge.on('route', (event) => { deliveries++; if (event.replayed) replays++ })
let edgeErrors = 0
edge.on('edge-error', () => { edgeErrors++ })

const ids = launched.machines.map((m) => m.id)
// A Machine answers once Navigator listens; its WebSocket server may still be starting (its upgrades get the
// maintenance page meanwhile). Traffic starts once every Machine is fully up.
const readyBy = Date.now() + 30_000
while (ids.some((id) => !cableReady.has(id) || !listening.has(id))) {
  if (Date.now() > readyBy) throw new Error('the Machines did not come up within 30 s')
  await new Promise((resolve) => setTimeout(resolve, 50))
}
for (const machine of launched.machines) {
  const pid = listenerPid(Number(new URL(machine.url).port))
  if (pid === null) throw new Error(`no process found listening on ${machine.url}`)
  pids.set(machine.id, pid)
}
const samples = []
function sample (at) {
  samples.push({
    second: Math.round(at / 1000),
    rss: ids.map((id) => pids.has(id) ? rssMiB(pids.get(id)) : null),
    fds: ids.map((id) => pids.has(id) ? descriptorCount(pids.get(id)) : null)
  })
}

const base = edge.url
const hostileLoops = Number(values['hostile-clients'])
console.error(`soak: ${values.minutes} min through ${base}, Machines ${launched.machines.map((m) => `${m.id} ${m.url}`).join(', ')}; ` +
  `${hostileLoops} hostile loops of each kind at the Machines; ${machineDescription()}`)
const startedAt = Date.now()
endAt = startedAt + DURATION_MS
sample(0)
const sampler = setInterval(() => {
  if (!running()) return // the sample at the stop is taken once everything has stopped
  sample(Date.now() - startedAt)
  const s = stats
  const last = samples[samples.length - 1]
  console.error(`  ${last.second} s: sticky ${s.sticky.ok}, anonymous ${s.anonymous.ok}, uploads ${s.upload.ok}, websockets ${s.websocket.ok}, ` +
    `failed ${NORMAL.reduce((sum, kind) => sum + s[kind].failed, 0)}; hostile ${Object.entries(hostile).map(([kind, h]) => `${kind} ${h.opened}`).join(', ')}; ` +
    `fds ${last.fds.join('/')}, RSS ${last.rss.join('/')} MiB`)
}, SAMPLE_MS)

await Promise.all([
  ...Array.from({ length: Number(values['get-clients']) }, () => stickyClient(base)),
  anonymousClient(base),
  ...Array.from({ length: Number(values['upload-clients']) }, () => uploadClient(base)),
  ...Array.from({ length: Number(values['ws-clients']) }, () => webSocketClient(base)),
  ...Object.keys(ATTACKS).flatMap((kind) => Array.from({ length: hostileLoops }, (_, loop) => hostileLoop(kind, launched.machines, loop))),
  // When the time is up the held sockets go too, rather than running out their hold time.
  new Promise((resolve) => setTimeout(resolve, DURATION_MS)).then(() => { for (const release of hostileSockets) release() })
])
clearInterval(sampler)
const seconds = (Date.now() - startedAt) / 1000
const reading = () => ({ rss: ids.map((id) => rssMiB(pids.get(id))), fds: ids.map((id) => descriptorCount(pids.get(id))) })
const stopped = reading()
// Idle again: what is still held now was kept, not in use (pooled upstream connections close after a few seconds).
const IDLE_AFTER_MS = 15_000
await new Promise((resolve) => setTimeout(resolve, IDLE_AFTER_MS))
const after = reading()

await edge.close()
await launched.stop()

const s = stats
const rows = [
  ['sticky GETs (cookie jar)', s.sticky.ok + s.sticky.failed, s.sticky.failed],
  ['cookie-less GETs', s.anonymous.ok + s.anonymous.failed, s.anonymous.failed],
  [`${values['upload-mib']} MiB uploads (direct proxy)`, s.upload.ok + s.upload.failed, s.upload.failed],
  ['WebSocket open/echo/close', s.websocket.ok + s.websocket.failed, s.websocket.failed]
]
const normalFailed = NORMAL.reduce((sum, kind) => sum + s[kind].failed, 0)
const normalTotal = rows.reduce((sum, row) => sum + row[1], 0)
console.log(`\nSoak: ${seconds.toFixed(0)} s, 3 Machines behind the local edge; ${machineDescription()}`)
console.log(`Command: node bench/soak.mjs ${process.argv.slice(2).join(' ')}`)
console.log('\n| traffic | requests | failed |\n| --- | ---: | ---: |')
for (const [name, total, failed] of rows) console.log(`| ${name} | ${total} | ${failed} |`)
console.log(`| all normal traffic | ${normalTotal} | ${normalFailed} |`)
console.log(`\nEdge: ${deliveries} deliveries, ${replays} of them replays (fly-replay), ${edgeErrors} edge errors.`)
console.log(`Uploads: ${(s.upload.bytesSent / 1024 / 1024).toFixed(0)} MiB sent, ${s.upload.bytesLost} bytes lost.`)

console.log(`\nHostile connections (${hostileLoops} loops of each kind, one connection every ${HOSTILE_EVERY_MS} ms while a loop holds ` +
  `fewer than ${HOSTILE_HELD}, each held ${HOSTILE_HOLD_MS / 1000} s unless Navigator ends it first):`)
console.log('\n| kind | connections | answers | ended by Navigator | ms to Navigator\'s end, median / max | held to the limit | aborted by the client | open when the soak ended |')
console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |')
for (const [kind, h] of Object.entries(hostile)) {
  const answers = Object.entries(h.answers).sort().map(([status, count]) => `${status}: ${count}`).join(', ')
  const ms = h.endMs.length > 0 ? `${Math.round(median(h.endMs))} / ${Math.max(...h.endMs)}` : '-'
  console.log(`| ${kind} | ${h.opened} | ${answers} | ${h.endedByNavigator} | ${ms} | ${h.heldToLimit} | ${h.aborted} | ${h.openAtEnd} |`)
}

const trends = ids.map((id, i) => ({
  id,
  fds: trend(samples.map((row) => row.fds[i]), stopped.fds[i], after.fds[i]),
  rss: trend(samples.map((row) => row.rss[i]), stopped.rss[i], after.rss[i])
}))
console.log(`\nEach Navigator's open descriptors and RSS (MiB), sampled every ${SAMPLE_MS / 1000} s. "Start": idle, before any ` +
  'traffic; median, max, first and last minute: the samples under traffic; "slope": a least-squares fit per minute ' +
  `after the first minute; "stop": once all traffic stopped and the held sockets were closed; "after": idle, ${IDLE_AFTER_MS / 1000} s later.`)
console.log('\n| Machine | figure | start | median | max | first minute, median | last minute, median | slope per min | stop | after |')
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const t of trends) {
  for (const [figure, f] of [['descriptors', t.fds], ['RSS MiB', t.rss]]) {
    console.log(`| ${t.id} | ${figure} | ${f.start} | ${f.median} | ${f.max} | ${f.firstMinute} | ${f.lastMinute} | ${f.slope} | ${f.stop} | ${f.after} |`)
  }
}
console.log('\n| t (s) | ' + ids.map((id) => `fds ${id}`).join(' | ') + ' | ' + ids.map((id) => `RSS ${id} (MiB)`).join(' | ') + ' |')
console.log('| ---: | ' + ids.map(() => '---:').join(' | ') + ' | ' + ids.map(() => '---:').join(' | ') + ' |')
const show = (values) => values.map((v) => v ?? '?').join(' | ')
for (const row of samples) console.log(`| ${row.second} | ${show(row.fds)} | ${show(row.rss)} |`)
console.log(`| stop | ${show(stopped.fds)} | ${show(stopped.rss)} |`)
console.log(`| stop + ${IDLE_AFTER_MS / 1000} s | ${show(after.fds)} | ${show(after.rss)} |`)
if (s.failures.length > 0) console.log('\nFirst failures:\n' + s.failures.map((f) => `- ${f}`).join('\n'))

mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
const file = join(ROOT, 'bench/results', `soak-${Date.now()}.json`)
writeFileSync(file, JSON.stringify({
  command: `node bench/soak.mjs ${process.argv.slice(2).join(' ')}`,
  machine: machineDescription(),
  seconds,
  normal: Object.fromEntries(NORMAL.map((kind) => [kind, s[kind]])),
  failures: s.failures,
  edge: { deliveries, replays, edgeErrors },
  hostile: Object.fromEntries(Object.entries(hostile).map(([kind, h]) => [kind, { ...h, endMs: undefined, endMsMedian: median(h.endMs), endMsMax: h.endMs.length > 0 ? Math.max(...h.endMs) : null }])),
  machines: launched.machines.map((m) => ({ id: m.id, url: m.url, pid: pids.get(m.id) })),
  trends,
  samples,
  stopped,
  after
}, null, 2) + '\n')
console.log(`\nRaw figures: ${file.slice(ROOT.length + 1)}`)
process.exitCode = s.failures.length > 0 || s.upload.bytesLost > 0 ? 1 : 0

/**
 * A series sampled every SAMPLE_MS from the idle start (its first value): the start, the median and max under
 * traffic, the medians of its first and last minute of traffic, its slope per minute after the first minute.
 */
function trend (series, stop, after) {
  const minute = 60_000 / SAMPLE_MS
  const traffic = series.slice(1).filter((v) => v !== null)
  const settled = series.map((v, i) => [i, v]).slice(minute + 1).filter(([, v]) => v !== null)
  const tenth = (v) => Math.round(v * 10) / 10
  return {
    start: series[0],
    median: tenth(median(traffic)),
    max: Math.max(...traffic),
    firstMinute: tenth(median(series.slice(1, minute + 1))),
    lastMinute: tenth(median(series.slice(-minute))),
    slope: Math.round(slope(settled) * minute * 100) / 100,
    stop,
    after
  }
}

/** Least-squares slope of [x, y] points, per unit of x. */
function slope (points) {
  if (points.length < 2) return NaN
  const mx = points.reduce((sum, [x]) => sum + x, 0) / points.length
  const my = points.reduce((sum, [, y]) => sum + y, 0) / points.length
  const num = points.reduce((sum, [x, y]) => sum + (x - mx) * (y - my), 0)
  const den = points.reduce((sum, [x]) => sum + (x - mx) ** 2, 0)
  return num / den
}
