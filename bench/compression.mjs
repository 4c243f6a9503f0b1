#!/usr/bin/env node
// Compression of proxied responses: a 50 KiB HTML page from a tenant through Navigator, asked for with
// Accept-Encoding br, gzip and none, and the same from a Navigator with server.disable_compression: true. Requests
// are sequential on one kept-alive connection per case, in blocks of --block, the cases' blocks interleaved
// (A B C D A B C D ...) after a warm-up; the first request of each block is not counted (the first request to a
// Navigator that was idle for a moment is slower whatever it asks). Navigator on core 0, the tenant and this client
// on core 1.
//
//   node bench/compression.mjs [--requests 200] [--block 10] [--warmup 50] [--size 51200]
//
// Prints a markdown table (bytes on the wire, median and p99 time to last byte, Navigator's CPU per request) and
// writes bench/results/compression-<time>.json.
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { brotliCompressSync, constants, createBrotliCompress, createGzip, gzipSync } from 'node:zlib'
import {
  ROOT, NAVIGATOR_BIN, PROXY_CORE, LOAD_CORE, freePort, waitForPort, spawnPinned, stopProcess,
  cpuSeconds, median, percentile, machineDescription
} from './lib.mjs'

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    block: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '50' },
    size: { type: 'string', default: String(50 * 1024) }
  }
})
const block = Number(flags.block)
const requests = Math.ceil(Number(flags.requests) / block) * block
const warmup = Number(flags.warmup)
const size = Number(flags.size)
const work = mkdtempSync(join(tmpdir(), 'navigator-bench-compression-'))

// The page: a table of rows that differ, as a listing rendered by an app would; it compresses about as real HTML does.
const TENANT = `
import { createServer } from 'node:http'
const size = ${size}
let html = '<!DOCTYPE html><html><head><title>Orders</title><link rel="stylesheet" href="/app.css"></head><body><table>\\n'
let seed = 42
const next = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed }
const names = ['Ada', 'Grace', 'Linus', 'Barbara', 'Edsger', 'Margaret', 'Ken', 'Frances']
for (let row = 0; html.length < size; row++) {
  html += '<tr class="order ' + (row % 2 ? 'odd' : 'even') + '"><td><a href="/orders/' + (1000 + row) + '">#' + (1000 + row) + '</a></td><td>' +
    names[next() % names.length] + ' ' + names[next() % names.length] + '</td><td>' + (next() % 100000 / 100).toFixed(2) +
    ' EUR</td><td><time datetime="2026-12-' + String(1 + next() % 28).padStart(2, '0') + '">' + next().toString(36) + '</time></td></tr>\\n'
}
const body = Buffer.from(html.slice(0, size - 23) + '</table></body></html>\\n')
const server = createServer((req, res) => {
  req.resume()
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => server.close(() => process.exit(0)))
`

async function startNavigator (disableCompression) {
  const port = await freePort()
  const dir = mkdtempSync(join(work, 'nav-'))
  mkdirSync(join(dir, 'public'))
  writeFileSync(join(dir, 'tenant.mjs'), TENANT)
  writeFileSync(join(dir, 'navigator.yml'), `server:
  listen: ${port}
  disable_compression: ${disableCompression}
applications:
  command: taskset
  args: ["-c", "${LOAD_CORE}", "${process.execPath}", "${join(dir, 'tenant.mjs')}"]
  health_check: /
  tenants:
    - name: app
      path: /
      start: eager
`)
  const child = spawnPinned(PROXY_CORE, process.execPath, [NAVIGATOR_BIN, join(dir, 'navigator.yml')], { env: { LOG_LEVEL: 'warn' } })
  await waitForPort(port)
  return { port, child }
}

/** One GET on `agent`: bytes of the body as received, and milliseconds from the request to its last byte. */
function get (port, agent, acceptEncoding, keep = false) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const headers = acceptEncoding === null ? {} : { 'accept-encoding': acceptEncoding }
    const req = request({ host: '127.0.0.1', port, path: '/', agent, headers }, (res) => {
      let bytes = 0
      const chunks = []
      res.on('data', (chunk) => {
        bytes += chunk.length
        if (keep) chunks.push(chunk)
      })
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`))
        else resolve({ bytes, ms: performance.now() - started, encoding: res.headers['content-encoding'] ?? 'none', body: Buffer.concat(chunks) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

// Memory of an open compressor, as Navigator creates one per compressed response in flight: 200 of each kind, each
// fed 50 KiB and kept open, measured first, in this process, as RSS growth.
const BROTLI_PARAMS = { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT }
async function encoderMemoryKiB (create) {
  const before = process.memoryUsage().rss
  const open = []
  const text = Buffer.from('<tr><td>an order</td><td>a customer</td></tr>\n'.repeat(1200))
  for (let i = 0; i < 200; i++) {
    const encoder = create()
    encoder.on('data', () => {})
    encoder.write(text)
    open.push(encoder)
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  const perEncoder = (process.memoryUsage().rss - before) / 200 / 1024
  for (const encoder of open) encoder.destroy()
  return perEncoder
}
const memory = {
  brotli: await encoderMemoryKiB(() => createBrotliCompress({ params: BROTLI_PARAMS })),
  gzip: await encoderMemoryKiB(() => createGzip({ level: 6 }))
}

const on = await startNavigator(false)
const off = await startNavigator(true)
const cases = [
  { name: 'none (no Accept-Encoding)', nav: on, accept: null },
  { name: 'gzip', nav: on, accept: 'gzip' },
  { name: 'br', nav: on, accept: 'br' },
  { name: 'gzip, br (a browser)', nav: on, accept: 'gzip, deflate, br' },
  { name: 'none; disable_compression: true', nav: off, accept: null },
  { name: 'gzip, br; disable_compression: true', nav: off, accept: 'gzip, deflate, br' }
].map((each) => ({ ...each, agent: new Agent({ keepAlive: true, maxSockets: 1 }), times: [], bytes: 0, encoding: '', cpu: 0 }))

// The tenant starts eagerly; the first answers wait for it.
for (const each of cases) {
  for (let attempt = 0; ; attempt++) {
    const ok = await get(each.nav.port, each.agent, each.accept).then(() => true, () => false)
    if (ok) break
    if (attempt > 200) throw new Error('the tenant did not answer')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
for (let i = 0; i < warmup; i++) {
  for (const each of cases) await get(each.nav.port, each.agent, each.accept)
}
for (let round = 0; round < requests / block; round++) {
  for (const each of cases) {
    await get(each.nav.port, each.agent, each.accept)
    // taskset execs Node: the child's pid is Navigator's (the tenant, its child, is left out).
    const pids = [each.nav.child.pid]
    const before = cpuSeconds(pids)
    for (let i = 0; i < block; i++) {
      const answer = await get(each.nav.port, each.agent, each.accept)
      each.times.push(answer.ms)
      each.bytes = answer.bytes
      each.encoding = answer.encoding
    }
    each.cpu += cpuSeconds(pids) - before
  }
}
const page = (await get(on.port, cases[0].agent, null, true)).body
await stopProcess(on.child)
await stopProcess(off.child)

// The encoders alone on the same page, in this process (one core), to show why brotli runs at quality 4 here.
function encoderTime (encode) {
  const times = []
  let bytes = 0
  for (let i = 0; i < 60; i++) {
    const started = performance.now()
    bytes = encode(page).length
    if (i >= 10) times.push(performance.now() - started)
  }
  return { bytes, medianMs: median(times) }
}
const encoders = [
  ['gzip level 6 (Navigator)', (body) => gzipSync(body, { level: 6 })],
  ['brotli quality 4 (Navigator)', (body) => brotliCompressSync(body, { params: BROTLI_PARAMS })],
  ['brotli quality 11 (zlib default)', (body) => brotliCompressSync(body)]
].map(([name, encode]) => ({ name, ...encoderTime(encode) }))

const baseline = median(cases[0].times)
const rows = cases.map((each) => ({
  case: each.name,
  encoding: each.encoding,
  bytes: each.bytes,
  sizeRatio: each.bytes / cases[0].bytes,
  medianMs: median(each.times),
  p99Ms: percentile(each.times, 99),
  timeRatio: median(each.times) / baseline,
  cpuUsPerRequest: (each.cpu / requests) * 1e6
}))
console.log(`\nMachine: ${machineDescription()}`)
console.log(`Command: node bench/compression.mjs --requests ${requests} --block ${block} --warmup ${warmup} --size ${size}\n`)
console.log('| Accept-Encoding | sent as | bytes | size ratio | TTLB median ms | p99 ms | time ratio | Navigator CPU µs/req |')
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const row of rows) {
  console.log(`| ${row.case} | ${row.encoding} | ${row.bytes.toLocaleString('en')} | ${row.sizeRatio.toFixed(3)} | ${row.medianMs.toFixed(2)} | ${row.p99Ms.toFixed(2)} | ${row.timeRatio.toFixed(2)} | ${row.cpuUsPerRequest.toFixed(0)} |`)
}
console.log('\n| encoder alone | bytes | median ms |')
console.log('| --- | ---: | ---: |')
for (const each of encoders) console.log(`| ${each.name} | ${each.bytes.toLocaleString('en')} | ${each.medianMs.toFixed(2)} |`)
console.log(`\nMemory of an open compressor (RSS growth per stream, 200 open): brotli ${memory.brotli.toFixed(0)} KiB, gzip ${memory.gzip.toFixed(0)} KiB`)
mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
const file = join(ROOT, 'bench/results', `compression-${Date.now()}.json`)
writeFileSync(file, JSON.stringify({ machine: machineDescription(), requests, block, warmup, size, rows, encoders, memoryKiB: memory }, null, 2) + '\n')
console.log(`\nwritten ${file}`)
process.exit(0)
