#!/usr/bin/env node
// Profiles one Navigator process under wrk load: starts it with --cpu-prof (pinned like bench/proxy.mjs, with a
// tenant on the other core), warms up, loads it, stops it with SIGTERM so V8 writes the profile, and summarises.
//
//   node bench/profile-navigator.mjs [--scenario sticky|plain|replay] [--duration 10] [--out bench/profiles]
import { mkdtempSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execFileSync } from 'node:child_process'
import { ROOT, NAVIGATOR_BIN, PROXY_CORE, LOAD_CORE, freePort, waitForPort, spawnPinned, stopProcess, runWrk } from './lib.mjs'

const { values: flags } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'sticky' },
    duration: { type: 'string', default: '10' },
    out: { type: 'string', default: join(ROOT, 'bench/profiles') }
  }
})
const scenario = flags.scenario
mkdirSync(flags.out, { recursive: true })
const dir = mkdtempSync(join(tmpdir(), 'navigator-profile-'))
const profDir = mkdtempSync(join(dir, 'prof-'))
const port = await freePort()
const second = await freePort()
writeFileSync(join(dir, 'navigator.yml'), `server:
  listen: ${port}
routes:
  fly:
    sticky_sessions:
      enabled: ${scenario !== 'plain'}
      peers:
        m1: http://127.0.0.1:1
        m2: http://127.0.0.1:${second}
applications:
  command: taskset
  args: ["-c", "${LOAD_CORE}", "${process.execPath}", "${join(ROOT, 'bench/upstream.mjs')}", "\${PORT}", "m1"]
  health_check: /up
  tenants:
    - name: app
      path: /
      start: eager
`)
const child = spawnPinned(PROXY_CORE, process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, NAVIGATOR_BIN, join(dir, 'navigator.yml')], {
  env: { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'bench', FLY_REGION: 'lcl', LOG_LEVEL: 'info' }
})
await waitForPort(port)
for (let i = 0; i < 100; i++) {
  const res = await fetch(`http://127.0.0.1:${port}/`).catch(() => null)
  if (res?.ok) break
  await new Promise((resolve) => setTimeout(resolve, 100))
}
const cookie = scenario === 'replay' ? 'm2' : 'm1'
await runWrk(`http://127.0.0.1:${port}/app/page`, { duration: 2, headers: [`Cookie: _navigator_machine=${cookie}`] })
const run = await runWrk(`http://127.0.0.1:${port}/app/page`, { duration: Number(flags.duration), headers: [`Cookie: _navigator_machine=${cookie}`] })
console.log(`${scenario}: ${run.rps.toFixed(0)} req/s under the profiler`)
await stopProcess(child)
const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
if (!file) throw new Error('no .cpuprofile written')
const target = join(flags.out, `navigator-${scenario}-${Date.now()}.cpuprofile`)
execFileSync('cp', [join(profDir, file), target])
console.log(execFileSync(process.execPath, [join(ROOT, 'bench/profile-summary.mjs'), target, '--top', '45']).toString())
