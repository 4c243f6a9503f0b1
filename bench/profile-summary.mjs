#!/usr/bin/env node
// Reads a V8 .cpuprofile (node --cpu-prof) and prints the top functions by self time, and the share of
// each script (by package) in the total: where the microseconds of the hot path go.
//
//   node bench/profile-summary.mjs <file.cpuprofile> [--top 40] [--inclusive <regexp of function or file names>]
//
// --inclusive also lists, for the matching functions, their total time (self and everything they called).
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '40' }, inclusive: { type: 'string' } }
})
const file = positionals[0]
if (!file) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [--top N]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const selfTime = new Map()
// timeDeltas[i] is the time between samples[i - 1] and samples[i]; attributed to sample i.
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]
  selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}

function shortUrl (url) {
  if (!url) return ''
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length)
  const pk = url.indexOf('/packages/')
  if (pk !== -1) return url.slice(pk + 1)
  return url.replace(/^file:\/\//, '')
}

function group (url) {
  if (!url) return '(native/vm)'
  if (url.startsWith('node:')) return 'node core'
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  const pk = /\/packages\/([^/]+)\//.exec(url)
  if (pk) return `@navigator/${pk[1]}`
  return url
}

const functions = new Map()
const groups = new Map()
let total = 0
for (const [id, time] of selfTime) {
  const node = byId.get(id)
  const frame = node.callFrame
  const key = `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`
  functions.set(key, (functions.get(key) ?? 0) + time)
  const g = frame.url ? group(frame.url) : frame.functionName.startsWith('(') ? frame.functionName : '(native/vm)'
  groups.set(g, (groups.get(g) ?? 0) + time)
  total += time
}
const idle = [...functions].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, t]) => a + t, 0)
const busy = total - idle
const pct = (t) => ((100 * t) / busy).toFixed(1).padStart(5) + '%'

console.log(`profile: ${file}`)
console.log(`total ${(total / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s (percentages of busy)`)
console.log('\nby package:')
for (const [name, time] of [...groups].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 20)) {
  console.log(`${pct(time)}  ${name}`)
}
console.log(`\ntop ${values.top} functions by self time:`)
for (const [name, time] of [...functions].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`${pct(time)}  ${name}`)
}

if (values.inclusive) {
  const wanted = new RegExp(values.inclusive)
  const children = new Map(profile.nodes.map((node) => [node.id, node.children ?? []]))
  const totals = new Map()
  function total (id) {
    let sum = selfTime.get(id) ?? 0
    for (const child of children.get(id)) sum += total(child)
    const node = byId.get(id)
    const frame = node.callFrame
    const key = `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`
    if (wanted.test(key)) {
      // A function under itself (recursion) is counted once, at its outermost frame.
      const entry = totals.get(key) ?? { time: 0, depth: 0 }
      if (entry.depth === 0) entry.time += sum
      totals.set(key, entry)
    }
    return sum
  }
  total(profile.nodes[0].id)
  console.log(`\ninclusive time of functions matching ${wanted}:`)
  for (const [name, { time }] of [...totals].sort((a, b) => b[1].time - a[1].time).slice(0, Number(values.top))) {
    console.log(`${pct(time)}  ${name}`)
  }
}
