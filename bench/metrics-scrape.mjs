#!/usr/bin/env node
// A scrape of ten thousand series: starts Navigator with `server.metrics` on and 330 configured tenants (never
// started; each has its upstream latency histogram, its upstream failures, its start histogram and its exit, restart
// and idle-stop counters from the first scrape on, about 34 series each), scrapes /metrics `--scrapes` times one
// after the other, and reports the wall time of a scrape (median, p95) and the CPU Navigator spent on each (from
// /proc, over all of them).
//
//   node bench/metrics-scrape.mjs [--tenants 330] [--scrapes 50]
import { request } from 'node:http'
import { parseArgs } from 'node:util'
import { cpuSeconds, machineDescription, median, percentile, stopProcess } from './lib.mjs'
import { startNavigator } from './navigator.mjs'

const { values: flags } = parseArgs({ options: { tenants: { type: 'string', default: '330' }, scrapes: { type: 'string', default: '50' } } })
const tenantCount = Number(flags.tenants)
const scrapes = Number(flags.scrapes)

function config (port) {
  const tenants = Array.from({ length: tenantCount }, (_, i) => `    - name: tenant-${i}\n      path: /t${i}\n`).join('')
  return `server:
  listen: "127.0.0.1:${port}"
  metrics: {}
applications:
  command: ${process.execPath}
  args: ["-e", "0"]
  tenants:
${tenants}`
}

function get (port, path) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks = []
      res.on('data', (chunk) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const nav = await startNavigator(config, { LOG_LEVEL: 'warn' })
try {
  const first = await get(nav.port, '/metrics')
  if (first.status !== 200) throw new Error(`the first scrape answered ${first.status}`)
  const series = first.text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length
  const times = []
  const cpuBefore = cpuSeconds([nav.child.pid])
  for (let i = 0; i < scrapes; i++) {
    const started = performance.now()
    const answer = await get(nav.port, '/metrics')
    times.push(performance.now() - started)
    if (answer.status !== 200) throw new Error(`scrape ${i} answered ${answer.status}`)
  }
  const cpuMs = (cpuSeconds([nav.child.pid]) - cpuBefore) * 1000 / scrapes
  console.log(`Machine: ${machineDescription()}`)
  console.log(`Command: node bench/metrics-scrape.mjs --tenants ${tenantCount} --scrapes ${scrapes}`)
  console.log(`A scrape of ${series} series (${Buffer.byteLength(first.text)} bytes), ${scrapes} scrapes: wall median ${median(times).toFixed(1)} ms, p95 ${percentile(times, 95).toFixed(1)} ms, fastest ${Math.min(...times).toFixed(1)} ms; Navigator CPU ${cpuMs.toFixed(1)} ms per scrape`)
} finally {
  await stopProcess(nav.child)
}
