#!/usr/bin/env node
// Runs the whole tap suite and ends with the plain line "N passed, N failed".
// N counts the test() blocks of every test file; a file that fails outside any
// test (a crash, a syntax error) counts as one failure of its own.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

const args = ['tap', '--reporter=tap', ...process.argv.slice(2)]
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'] })
let passed = 0
let failed = 0
let failedInFile = 0
const lines = createInterface({ input: child.stdout })
lines.on('line', (line) => {
  process.stdout.write(line + '\n')
  const inner = /^ {4}(not )?ok \d+ - /.exec(line)
  if (inner) {
    if (/# SKIP|# TODO/i.test(line)) {
      failed++
      failedInFile++
    } else if (inner[1]) {
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
child.on('close', (code) => {
  if (code !== 0 && failed === 0) failed++
  process.stdout.write(`${passed} passed, ${failed} failed\n`)
  process.exitCode = failed === 0 ? 0 : 1
})
