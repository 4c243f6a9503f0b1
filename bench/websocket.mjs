#!/usr/bin/env node
// 2,000 WebSockets through Navigator's WebSocket proxy to a standalone echo server,
// compared with the same number connected to the echo server directly: Navigator's
// memory per connection and the added round trip of a small message (p50/p99).
//
//   node bench/websocket.mjs [--connections 2000] [--samples 4000]
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { ROOT, LOAD_CORE, freePort, waitForPort, stopProcess, memoryKiB, percentile, machineDescription, openWebSockets } from './lib.mjs'
import { startNavigator } from './navigator.mjs'

const { values: flags } = parseArgs({ options: { connections: { type: 'string', default: '2000' }, samples: { type: 'string', default: '4000' } } })
const count = Number(flags.connections)
const echoPort = await freePort()

const nav = await startNavigator((port) => `server:
  listen: ${port}
applications:
  standalone_servers:
    - name: cable
      match_path: /cable
      command: taskset
      args: ["-c", "${LOAD_CORE}", "${process.execPath}", "${join(ROOT, 'bench/ws-echo.mjs')}", "${echoPort}"]
      port: ${echoPort}
`)
await waitForPort(echoPort)

async function roundTrips (sockets) {
  const times = []
  const payload = Buffer.from('{"command":"message","data":"ping"}')
  for (let i = 0; i < Number(flags.samples); i++) {
    const ws = sockets[i % sockets.length]
    const started = process.hrtime.bigint()
    await new Promise((resolve) => { ws.once('message', resolve); ws.send(payload) })
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  return times
}

await new Promise((resolve) => setTimeout(resolve, 500))
const before = memoryKiB(nav.child.pid)
const proxied = await openWebSockets(`ws://127.0.0.1:${nav.port}/cable`, count)
// RSS is sampled for a few seconds after the last handshake: the garbage of the handshakes (request and
// response objects) is only returned once V8 has collected it; the lowest sample is the steady state.
const samples = []
for (let i = 0; i < 10; i++) {
  await new Promise((resolve) => setTimeout(resolve, 500))
  samples.push(memoryKiB(nav.child.pid))
}
const afterFirst = samples[0]
const after = Math.min(...samples)
const viaNavigator = await roundTrips(proxied)
const direct = await openWebSockets(`ws://127.0.0.1:${echoPort}/cable`, count)
const directTimes = await roundTrips(direct)
for (const ws of [...proxied, ...direct]) ws.terminate()

const perConnectionKiB = (after - before) / count
console.log(`Machine: ${machineDescription()}`)
console.log(`Command: node bench/websocket.mjs --connections ${count} --samples ${flags.samples}`)
console.log(`Navigator RSS: ${(before / 1024).toFixed(1)} MiB before, ${(after / 1024).toFixed(1)} MiB with ${count} proxied WebSockets (lowest of 10 samples over 5 s; ${(afterFirst / 1024).toFixed(1)} MiB 0.5 s after the last handshake): ${perConnectionKiB.toFixed(1)} KiB per connection`)
console.log(`Round trip via Navigator: p50 ${percentile(viaNavigator, 50).toFixed(3)} ms, p99 ${percentile(viaNavigator, 99).toFixed(3)} ms`)
console.log(`Round trip direct:        p50 ${percentile(directTimes, 50).toFixed(3)} ms, p99 ${percentile(directTimes, 99).toFixed(3)} ms`)
console.log(`Added by Navigator:       p50 ${(percentile(viaNavigator, 50) - percentile(directTimes, 50)).toFixed(3)} ms, p99 ${(percentile(viaNavigator, 99) - percentile(directTimes, 99)).toFixed(3)} ms`)
await stopProcess(nav.child)
process.exit(0)
