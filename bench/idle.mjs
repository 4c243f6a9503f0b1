#!/usr/bin/env node
// Idle memory: starts Navigator with one tenant configured (eager, so the tenant is running) and sticky sessions on,
// waits until it has settled, reads its RSS, stops it; several starts, because one reading moves by a MiB or two.
//
//   node bench/idle.mjs [--starts 5]
import { parseArgs } from 'node:util'
import { memoryKiB, stopProcess, machineDescription } from './lib.mjs'
import { oneTenantConfig, startNavigator } from './navigator.mjs'

const { values: flags } = parseArgs({ options: { starts: { type: 'string', default: '5' } } })
const starts = Number(flags.starts)

const readings = []
for (let i = 0; i < starts; i++) {
  const nav = await startNavigator((port) => oneTenantConfig(port), { FLY_MACHINE_ID: 'm1' })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  readings.push(memoryKiB(nav.child.pid) / 1024)
  await stopProcess(nav.child)
}
const sorted = [...readings].sort((a, b) => a - b)
console.log(`Machine: ${machineDescription()}`)
console.log(`Command: node bench/idle.mjs --starts ${starts}`)
console.log(`Idle Navigator RSS (one tenant, sticky sessions on), MiB: ${readings.map((v) => v.toFixed(1)).join(', ')}; median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)}, largest ${sorted.at(-1).toFixed(1)}`)
