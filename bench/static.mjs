#!/usr/bin/env node
// Static files: Navigator (whole pipeline: health check, rewrites, static step) versus
// @fastify/static alone, same file, same run, rounds interleaved. With --rules, Navigator's server.static also has
// allowed_extensions, try_files and cache_control overrides (the asset gets `public, max-age=31536000, immutable`).
//
//   node bench/static.mjs [--rounds 5] [--duration 5] [--rules]
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ROOT, PROXY_CORE, freePort, waitForPort, spawnPinned, stopProcess, runWrk, median, machineDescription } from './lib.mjs'
import { startNavigator } from './navigator.mjs'

const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, duration: { type: 'string', default: '5' }, rules: { type: 'boolean', default: false } } })
const dir = mkdtempSync(join(tmpdir(), 'navigator-static-'))
const publicDir = join(dir, 'public')
mkdirSync(join(publicDir, 'assets'), { recursive: true })
writeFileSync(join(publicDir, 'assets', 'app.css'), 'body { color: #333; }\n'.repeat(100))

const STATIC_RULES = `    allowed_extensions: [css, js, png, html]
    try_files: [index.html, .html]
    cache_control:
      default: 0
      overrides:
        - path: /images/
          max_age: 7d
        - path: /assets/
          max_age: 1y
          immutable: true
`
const nav = await startNavigator((port) => `server:
  listen: ${port}
  health_check: /up
  static:
    public_dir: ${publicDir}
${flags.rules ? STATIC_RULES : ''}`)
const plainPort = await freePort()
const plain = spawnPinned(PROXY_CORE, process.execPath, [join(ROOT, 'bench/contenders/fastify-static.mjs'), String(plainPort), publicDir])
await waitForPort(plainPort)

const contenders = [
  { name: 'navigator', port: nav.port, runs: [] },
  { name: '@fastify/static alone', port: plainPort, runs: [] }
]
for (const c of contenders) await runWrk(`http://127.0.0.1:${c.port}/assets/app.css`, { duration: 2 })
for (let round = 0; round < Number(flags.rounds); round++) {
  for (const c of contenders) {
    const run = await runWrk(`http://127.0.0.1:${c.port}/assets/app.css`, { duration: Number(flags.duration) })
    c.runs.push(run)
    console.error(`round ${round + 1} ${c.name}: ${run.rps.toFixed(0)} req/s, non-2xx ${run.non2xx3xx}`)
  }
}
const [a, b] = contenders.map((c) => median(c.runs.map((r) => r.rps)))
console.log(`Machine: ${machineDescription()}`)
console.log(`Command: node bench/static.mjs --rounds ${flags.rounds} --duration ${flags.duration}${flags.rules ? ' --rules' : ''}`)
console.log(`Navigator ${a.toFixed(0)} req/s, @fastify/static alone ${b.toFixed(0)} req/s (medians), ratio ${(a / b).toFixed(3)} (target >= 0.9)`)
await stopProcess(nav.child)
await stopProcess(plain)
process.exit(0)
