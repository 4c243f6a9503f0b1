#!/usr/bin/env node
// Navigator's TurboCable hub (cable.enabled) against the Action Cable layout it replaces: the same number of
// subscribers connected to Navigator's /cable, either answered by the hub, or relayed by Navigator to a standalone
// server (bench/cable-standalone.mjs, `ws`, the same protocol and fan-out) started by Navigator as
// applications.standalone_servers with match_path /cable. Measured: Navigator's RSS per connection (and the
// standalone server's, for the relayed layout), and the time from a broadcast's POST to its receipt by the last
// subscriber (median of several broadcasts). Both servers run on the proxy core, the clients on the other.
//
//   node bench/cable.mjs [--connections 2000] [--broadcasts 15]
//
// Needs about 3 descriptors per connection in Navigator (client, relay upstream) and one in this process: raise
// `ulimit -n` (8192 is enough for 2,000) when the shell's limit is lower; the script says so and stops.
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ROOT, PROXY_CORE, freePort, waitForPort, stopProcess, memoryKiB, median, machineDescription, openWebSockets } from './lib.mjs'
import { startNavigator } from './navigator.mjs'

const { values: flags } = parseArgs({ options: { connections: { type: 'string', default: '2000' }, broadcasts: { type: 'string', default: '15' } } })
const count = Number(flags.connections)
const broadcasts = Number(flags.broadcasts)

const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity)
if (limit < 3 * count + 256) {
  console.error(`ulimit -n is ${limit}: run \`ulimit -n ${Math.max(8192, 3 * count + 256)}\` first`)
  process.exit(2)
}

// A Turbo Stream of the size a Rails partial gives.
const DATA = `<turbo-stream action="replace" target="score_42"><template><tr id="score_42"><td>Heat 12</td><td>${'x'.repeat(200)}</td></tr></template></turbo-stream>`

/** Every client, subscribed to "scores" (open once the hub confirmed the subscription). */
function openAll (url) {
  return openWebSockets(url, count, (ws, done) => {
    ws.once('message', done)
    ws.send('{"type":"subscribe","stream":"scores"}')
  })
}

async function post (port, path, body) {
  await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      res.resume()
      res.once('end', resolve)
    })
    req.once('error', reject)
    req.end(body)
  })
}

/** Milliseconds from each broadcast's POST to the last client's receipt of it. */
async function fanOutTimes (clients, port, path) {
  const times = []
  for (let i = 0; i < broadcasts; i++) {
    const body = JSON.stringify({ stream: 'scores', data: `${DATA}<!-- ${i} -->` })
    let left = clients.length
    let done
    const all = new Promise((resolve) => { done = resolve })
    const started = process.hrtime.bigint()
    let last = started
    for (const ws of clients) {
      ws.once('message', () => {
        if (--left === 0) {
          last = process.hrtime.bigint()
          done()
        }
      })
    }
    await post(port, path, body)
    await all
    times.push(Number(last - started) / 1e6)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return times
}

/** The lowest RSS (KiB) of `pid` over 5 s: the handshakes' garbage is returned once V8 has collected it. */
async function settledRss (pid) {
  const samples = []
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    samples.push(memoryKiB(pid))
  }
  return Math.min(...samples)
}

async function measure (layout) {
  const standalonePort = await freePort()
  const nav = await startNavigator((port) => layout === 'hub'
    ? `server:\n  listen: ${port}\ncable:\n  enabled: true\n`
    : `server:
  listen: ${port}
applications:
  standalone_servers:
    - name: cable
      match_path: /cable
      command: taskset
      args: ["-c", "${PROXY_CORE}", "${process.execPath}", "${join(ROOT, 'bench/cable-standalone.mjs')}", "${standalonePort}"]
      port: ${standalonePort}
`, { LOG_LEVEL: 'warn' })
  if (layout === 'relay') await waitForPort(standalonePort)
  const standalonePid = layout === 'relay' ? standalonePidOf(nav.child.pid) : null
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const before = memoryKiB(nav.child.pid)
  const standaloneBefore = standalonePid === null ? 0 : memoryKiB(standalonePid)
  const clients = await openAll(`ws://127.0.0.1:${nav.port}/cable`)
  const after = await settledRss(nav.child.pid)
  const standaloneAfter = standalonePid === null ? 0 : await settledRss(standalonePid)
  const times = layout === 'hub' ? await fanOutTimes(clients, nav.port, '/_broadcast') : await fanOutTimes(clients, standalonePort, '/_broadcast')
  for (const ws of clients) ws.terminate()
  await stopProcess(nav.child)
  return {
    navigatorKiB: (after - before) / count,
    standaloneKiB: (standaloneAfter - standaloneBefore) / count,
    before,
    after,
    fanOutMs: median(times),
    times
  }
}

/** The standalone server's pid: the node process among the navigator's descendants that runs cable-standalone.mjs. */
function standalonePidOf (navigatorPid) {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    for (const pid of descendants(navigatorPid)) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cable-standalone.mjs') && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node') return pid
      } catch {}
    }
  }
  throw new Error('the standalone server process was not found')
}

function descendants (pid) {
  const found = []
  let children = []
  try { children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) } catch {}
  for (const child of children) found.push(child, ...descendants(child))
  return found
}

const hub = await measure('hub')
const relay = await measure('relay')
const kib = (value) => value.toFixed(1)
console.log(`Machine: ${machineDescription()}`)
console.log(`Command: node bench/cable.mjs --connections ${count} --broadcasts ${broadcasts}`)
console.log(`Hub:   Navigator RSS ${(hub.before / 1024).toFixed(1)} -> ${(hub.after / 1024).toFixed(1)} MiB, ${kib(hub.navigatorKiB)} KiB per connection; fan-out to ${count}: median ${hub.fanOutMs.toFixed(2)} ms (of ${broadcasts}: ${hub.times.map((t) => t.toFixed(1)).join(', ')})`)
console.log(`Relay: Navigator RSS ${(relay.before / 1024).toFixed(1)} -> ${(relay.after / 1024).toFixed(1)} MiB, ${kib(relay.navigatorKiB)} KiB per connection, plus the standalone server's ${kib(relay.standaloneKiB)} KiB; fan-out to ${count}: median ${relay.fanOutMs.toFixed(2)} ms (of ${broadcasts}: ${relay.times.map((t) => t.toFixed(1)).join(', ')})`)
console.log(`Ratios (relay / hub): memory per connection ${((relay.navigatorKiB + relay.standaloneKiB) / hub.navigatorKiB).toFixed(2)} (Navigator alone ${(relay.navigatorKiB / hub.navigatorKiB).toFixed(2)}), fan-out time ${(relay.fanOutMs / hub.fanOutMs).toFixed(2)}`)
process.exit(0)
