#!/usr/bin/env node
// How long loadConfig takes on a 500-tenant file (target: well under 50 ms).
// Build first: npx tsc -p packages/config. Run: node bench/config-load.mjs
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { loadConfig } from '../packages/config/dist/index.js'

// The same yaml library the config package uses, for the parse-only baseline.
const { parseDocument, LineCounter } = createRequire(new URL('../packages/config/package.json', import.meta.url))('yaml')

const TENANTS = 500
const WARMUP = 10
const RUNS = 50

function configText () {
  const lines = [
    'server:',
    '  listen: 3000',
    '  health_check: /up',
    '  idle: { action: suspend, timeout: 20m }',
    'routes:',
    '  rewrites:',
    '    - { pattern: "^/api/(.*)", rewrite: "/$1" }',
    '  fly:',
    '    replay:',
    '      - { path: "^/reports/", region: ord, methods: [GET, HEAD] }',
    '    sticky_sessions:',
    '      enabled: true',
    '      paths: ["/app/*", "/cable", "*/admin"]',
    '      secret: ${STICKY_SECRET}',
    'applications:',
    '  env: { RAILS_ENV: production, DATABASE_URL: "sqlite3:db/${tenant_id}.sqlite3" }',
    '  tenants:'
  ]
  for (let i = 0; i < TENANTS; i++) {
    lines.push(
      `    - name: tenant-${i}`,
      `      path: /tenant-${i}`,
      '      working_dir: /app',
      `      var: { tenant_id: tenant_${i}, label: "Tenant ${i}" }`,
      i % 10 === 0 ? '      start: eager' : '      start: lazy',
      '      env: { TENANT_LABEL: "${label}" }'
    )
  }
  lines.push(
    '  standalone_servers:',
    '    - { name: action-cable, match_path: /cable, command: bundle, args: [exec, puma, -p, "4001"], port: 4001 }'
  )
  return lines.join('\n') + '\n'
}

async function measure (run) {
  for (let i = 0; i < WARMUP; i++) await run()
  const wall = []
  const cpu = []
  for (let i = 0; i < RUNS; i++) {
    const cpuStart = process.cpuUsage()
    const start = performance.now()
    await run()
    wall.push(performance.now() - start)
    const used = process.cpuUsage(cpuStart)
    cpu.push((used.user + used.system) / 1000)
  }
  return { median: median(wall), p95: percentile(wall, 0.95), cpuMedian: median(cpu) }
}

function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 0 ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[middle]
}

function percentile (values, fraction) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.ceil(sorted.length * fraction) - 1]
}

const dir = await mkdtemp(join(tmpdir(), 'navigator-bench-'))
try {
  const file = join(dir, 'navigator.yml')
  const text = configText()
  await writeFile(file, text)
  const env = { STICKY_SECRET: 'bench-secret' }
  const load = await measure(async () => {
    const config = await loadConfig(file, { env })
    if (config.applications.tenants.length !== TENANTS) throw new Error('wrong tenant count')
  })
  const yamlOnly = await measure(async () => {
    parseDocument(text, { lineCounter: new LineCounter() }).toJS()
  })
  console.log(`loadConfig, ${TENANTS} tenants (${(text.length / 1024).toFixed(0)} KiB YAML), ${RUNS} runs after ${WARMUP} warm-up`)
  console.log(`median ${load.median.toFixed(2)} ms, p95 ${load.p95.toFixed(2)} ms (wall clock); CPU time median ${load.cpuMedian.toFixed(2)} ms`)
  console.log(`baseline, yaml parseDocument + toJS alone: median ${yamlOnly.median.toFixed(2)} ms, p95 ${yamlOnly.p95.toFixed(2)} ms (wall clock); CPU time median ${yamlOnly.cpuMedian.toFixed(2)} ms`)
  console.log(`load average during the run: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`)
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} CPUs, node ${process.version}`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
