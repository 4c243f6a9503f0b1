#!/usr/bin/env node
// Runs the whole suite and ends with the plain line "N passed, N failed":
// - the tap suite: N counts the test() blocks of every test file; a file that fails outside any test (a crash, a
//   syntax error) counts as one failure of its own;
// - then, for a whole run (no arguments): the type tests (tstyche, each test() counts), the linter (neostandard, one
//   check), and the line-coverage gate (one check per gated package, from the tap run's coverage).
import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Packages whose logic is unit-testable: their src must keep at least this share of lines covered. */
const COVERAGE_GATE = { packages: ['config', 'fly-replay', 'sticky-sessions'], minimumPct: 95 }

let passed = 0
let failed = 0

function run (command, args, onLine) {
  return new Promise((resolve) => {
    // NO_COLOR: plain lines to parse (tstyche's summary).
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_COLOR: '1' } })
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      process.stdout.write(line + '\n')
      onLine?.(line)
    })
    child.on('close', (code) => { lines.close(); resolve(code) })
  })
}

async function tapSuite (args) {
  let failedInFile = 0
  const code = await run('npx', ['tap', '--reporter=tap', ...args], (line) => {
    const inner = /^ {4}(not )?ok \d+ - /.exec(line)
    if (inner) {
      if (/# SKIP|# TODO/i.test(line) || inner[1]) {
        failed++
        failedInFile++
      } else {
        passed++
      }
      return
    }
    const file = /^(not )?ok \d+ - /.exec(line)
    if (file) {
      if (file[1] && failedInFile === 0) failed++
      failedInFile = 0
    }
  })
  if (code !== 0 && failed === 0) failed++
}

/** One check that passes or fails as a whole. */
function check (name, ok, detail) {
  process.stdout.write(`${ok ? 'ok' : 'not ok'} - ${name}${detail === undefined ? '' : `: ${detail}`}\n`)
  if (ok) passed++
  else failed++
}

async function typeTests () {
  let summary = null
  const code = await run('npx', ['tstyche'], (line) => {
    const match = /^Tests:\s+(.*)$/.exec(line)
    if (match !== null) summary = match[1]
  })
  const ok = Number(/(\d+) passed/.exec(summary ?? '')?.[1] ?? 0)
  const bad = Number(/(\d+) failed/.exec(summary ?? '')?.[1] ?? 0)
  passed += ok
  failed += bad
  if (code !== 0 && bad === 0) check('type tests', false, `tstyche exited with ${code}`)
}

async function coverageGate () {
  // A summary left by an earlier run must not stand in for this one's.
  rmSync(`${ROOT}/.tap/report/coverage-summary.json`, { force: true })
  await run('npx', ['tap', 'report', 'json-summary'])
  let summary
  try {
    summary = JSON.parse(readFileSync(`${ROOT}/.tap/report/coverage-summary.json`, 'utf8'))
  } catch (err) {
    check('line coverage', false, `no coverage summary (${err.message})`)
    return
  }
  const { checks, reported } = coverageChecks(summary)
  for (const line of reported) process.stdout.write(`# ${line}\n`)
  for (const { name, ok, detail } of checks) check(name, ok, detail)
}

/**
 * The gate's checks from a coverage summary (istanbul's json-summary): one per gated package, and a line for each
 * other package. A gated package the run measured nothing of (its tests did not run, or its sources moved) fails:
 * no number is not a pass.
 */
export function coverageChecks (summary) {
  const byPackage = new Map()
  for (const [file, { lines }] of Object.entries(summary)) {
    const match = /[\\/]packages[\\/]([^\\/]+)[\\/]src[\\/]/.exec(file)
    if (match === null) continue
    const sums = byPackage.get(match[1]) ?? { total: 0, covered: 0 }
    sums.total += lines.total
    sums.covered += lines.covered
    byPackage.set(match[1], sums)
  }
  const checks = []
  const reported = []
  const name = (gated) => `line coverage of ${gated} at least ${COVERAGE_GATE.minimumPct} %`
  for (const [pkg, { total, covered }] of [...byPackage].sort()) {
    const pct = total === 0 ? 100 : Math.round(covered / total * 10_000) / 100
    if (COVERAGE_GATE.packages.includes(pkg)) checks.push({ name: name(pkg), ok: pct >= COVERAGE_GATE.minimumPct, detail: `${pct} %` })
    else reported.push(`line coverage of ${pkg}: ${pct} % (reported, not gated)`)
  }
  for (const gated of COVERAGE_GATE.packages.filter((pkg) => !byPackage.has(pkg))) {
    checks.push({ name: name(gated), ok: false, detail: 'not in the coverage summary' })
  }
  return { checks, reported }
}

async function main () {
  const args = process.argv.slice(2)
  await tapSuite(args)
  if (args.length === 0) {
    await typeTests()
    check('lint (neostandard)', await run('npx', ['eslint', '.']) === 0)
    await coverageGate()
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`)
  process.exitCode = failed === 0 ? 0 : 1
}

// Imported (to test the gate), it runs nothing.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
