// Soak: mixed traffic through the local Fly edge and three real Navigator Machines running the demo, for a bounded
// time, counting every failed request and every lost upload byte, and sampling each Navigator's RSS every 10 s.
// Not run in CI. Build first: npx tsc -p packages/fly-edge (and its dependencies' dist, as for the demo).
//
//   node bench/soak.mjs [--minutes 5] [--get-clients 4] [--upload-clients 1] [--ws-clients 1] [--upload-mib 2]
//
// Traffic, each kind in its own loop, back to back:
// - sticky GETs: cookie-jar clients on /app/whoami; a reply from another Machine than the cookie names is a failure;
//   the edge balances them, so most arrive on the wrong Machine first and are replayed (counted from the edge);
// - cookie-less GETs of the same page (spread over the Machines);
// - uploads of --upload-mib MiB with the cookie, Content-Length set (over 1 MiB: not replayable, so a Machine that
//   is not the pinned one proxies them directly); the tenant answers bytes + sha256, compared with what was sent;
// - WebSockets on /cable with the cookie: open, welcome from the pinned Machine, one echo, close.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { FlyEdge, launchMachines } from '../packages/fly-edge/dist/index.js'
import { ROOT, machineDescription } from './lib.mjs'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    'get-clients': { type: 'string', default: '4' },
    'upload-clients': { type: 'string', default: '1' },
    'ws-clients': { type: 'string', default: '1' },
    'upload-mib': { type: 'string', default: '2' }
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

function rssMiB (pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))
    return Math.round(Number(line.split(/\s+/)[1]) / 1024 * 10) / 10
  } catch { return null }
}

const pids = new Map()
const cableReady = new Set()
const launched = await launchMachines({
  config: join(ROOT, 'examples/demo/navigator.yml'),
  count: 3,
  app: 'soak',
  regions: ['iad', 'ord', 'ams'],
  env: { LOG_LEVEL: 'info' },
  onOutput: (id, line) => {
    // Lines about a child carry the child's pid; the "listening" line carries only Navigator's own.
    if (line.includes('"msg":"listening"')) pids.set(id, JSON.parse(line).pid)
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
while (ids.some((id) => !cableReady.has(id) || !pids.has(id))) {
  if (Date.now() > readyBy) throw new Error('the Machines did not come up within 30 s')
  await new Promise((resolve) => setTimeout(resolve, 50))
}
const samples = []
function sample (at) {
  samples.push({ second: Math.round(at / 1000), rss: ids.map((id) => pids.has(id) ? rssMiB(pids.get(id)) : null) })
}

const base = edge.url
console.error(`soak: ${values.minutes} min through ${base}, Machines ${ids.join(', ')}; ${machineDescription()}`)
const startedAt = Date.now()
endAt = startedAt + DURATION_MS
sample(0)
const sampler = setInterval(() => {
  sample(Date.now() - startedAt)
  const s = stats
  console.error(`  ${Math.round((Date.now() - startedAt) / 1000)} s: sticky ${s.sticky.ok}, anonymous ${s.anonymous.ok}, uploads ${s.upload.ok}, websockets ${s.websocket.ok}, failed ${s.sticky.failed + s.anonymous.failed + s.upload.failed + s.websocket.failed}`)
}, SAMPLE_MS)

await Promise.all([
  ...Array.from({ length: Number(values['get-clients']) }, () => stickyClient(base)),
  anonymousClient(base),
  ...Array.from({ length: Number(values['upload-clients']) }, () => uploadClient(base)),
  ...Array.from({ length: Number(values['ws-clients']) }, () => webSocketClient(base))
])
clearInterval(sampler)
if (Date.now() - startedAt - samples[samples.length - 1].second * 1000 > 1000) sample(Date.now() - startedAt)
const seconds = (Date.now() - startedAt) / 1000

await edge.close()
await launched.stop()

const s = stats
const rows = [
  ['sticky GETs (cookie jar)', s.sticky.ok + s.sticky.failed, s.sticky.failed],
  ['cookie-less GETs', s.anonymous.ok + s.anonymous.failed, s.anonymous.failed],
  [`${values['upload-mib']} MiB uploads (direct proxy)`, s.upload.ok + s.upload.failed, s.upload.failed],
  ['WebSocket open/echo/close', s.websocket.ok + s.websocket.failed, s.websocket.failed]
]
console.log(`\nSoak: ${seconds.toFixed(0)} s, 3 Machines behind the local edge; ${machineDescription()}`)
console.log('\n| traffic | requests | failed |\n| --- | ---: | ---: |')
for (const [name, total, failed] of rows) console.log(`| ${name} | ${total} | ${failed} |`)
console.log(`\nEdge: ${deliveries} deliveries, ${replays} of them replays (fly-replay), ${edgeErrors} edge errors.`)
console.log(`Uploads: ${(s.upload.bytesSent / 1024 / 1024).toFixed(0)} MiB sent, ${s.upload.bytesLost} bytes lost.`)
console.log('\n| t (s) | ' + ids.map((id) => `RSS ${id} (MiB)`).join(' | ') + ' |')
console.log('| ---: | ' + ids.map(() => '---:').join(' | ') + ' |')
for (const row of samples) console.log(`| ${row.second} | ${row.rss.map((v) => v ?? '?').join(' | ')} |`)
if (s.failures.length > 0) console.log('\nFirst failures:\n' + s.failures.map((f) => `- ${f}`).join('\n'))
process.exitCode = s.failures.length > 0 || s.upload.bytesLost > 0 ? 1 : 0
