#!/usr/bin/env node
// 200 MiB (chunked, so not replayable) through Navigator's direct proxy to the pinned
// Machine: throughput, bytes received, and the Navigator process's RSS growth.
//
//   node bench/upload.mjs [--mib 200] [--runs 3]
import { request } from 'node:http'
import { parseArgs } from 'node:util'
import { ROOT, LOAD_CORE, freePort, waitForPort, spawnPinned, stopProcess, memoryKiB, median, machineDescription } from './lib.mjs'
import { oneTenantConfig, startNavigator } from './navigator.mjs'
import { join } from 'node:path'

const { values: flags } = parseArgs({ options: { mib: { type: 'string', default: '200' }, runs: { type: 'string', default: '3' } } })
const total = Number(flags.mib) * 1024 * 1024

const sinkPort = await freePort()
const sink = spawnPinned(LOAD_CORE, process.execPath, [join(ROOT, 'bench/upstream.mjs'), String(sinkPort), 'm2'])
await waitForPort(sinkPort)

const nav = await startNavigator((port) => oneTenantConfig(port, {
  m1: `http://127.0.0.1:${port}`,
  m2: `http://127.0.0.1:${sinkPort}`
}), { FLY_MACHINE_ID: 'm1' })

await new Promise((resolve) => setTimeout(resolve, 1000))
const idleRssKiB = memoryKiB(nav.child.pid)

function upload () {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 'x')
    const started = process.hrtime.bigint()
    let peak = memoryKiB(nav.child.pid)
    const before = peak
    const sampler = setInterval(() => { peak = Math.max(peak, memoryKiB(nav.child.pid)) }, 20)
    const req = request({ host: '127.0.0.1', port: nav.port, method: 'POST', path: '/upload', headers: { cookie: '_navigator_machine=m2', 'content-type': 'application/octet-stream' } }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => {
        clearInterval(sampler)
        const seconds = Number(process.hrtime.bigint() - started) / 1e9
        let received = -1
        try { received = JSON.parse(body).bytes } catch {}
        resolve({ status: res.statusCode, received, seconds, mibPerSecond: total / 1048576 / seconds, rssGrowthMiB: (peak - before) / 1024 })
      })
    })
    req.on('error', reject)
    let sent = 0
    const write = () => {
      while (sent < total) {
        sent += chunk.length
        if (!req.write(chunk)) return req.once('drain', write)
      }
      req.end()
    }
    write()
  })
}

const runs = []
for (let i = 0; i < Number(flags.runs); i++) {
  const run = await upload()
  runs.push(run)
  console.error(`run ${i + 1}: status ${run.status}, received ${run.received} of ${total} bytes, ${run.mibPerSecond.toFixed(0)} MiB/s, RSS growth ${run.rssGrowthMiB.toFixed(1)} MiB`)
}
console.log(`Machine: ${machineDescription()}`)
console.log(`Command: node bench/upload.mjs --mib ${flags.mib} --runs ${flags.runs}`)
console.log(`Idle Navigator (one tenant configured) RSS: ${(idleRssKiB / 1024).toFixed(1)} MiB`)
console.log(`${flags.mib} MiB chunked upload through the direct proxy: median ${median(runs.map((r) => r.mibPerSecond)).toFixed(0)} MiB/s, median RSS growth ${median(runs.map((r) => r.rssGrowthMiB)).toFixed(1)} MiB, max ${Math.max(...runs.map((r) => r.rssGrowthMiB)).toFixed(1)} MiB, all bytes received: ${runs.every((r) => r.received === total)}`)
await stopProcess(nav.child)
await stopProcess(sink)
process.exit(0)
