import { test } from 'tap'
import { join } from 'node:path'
import { runCli, startNavigator, tempDir, writeConfig, type LogLine, type Running } from './helpers.js'

/** A managed process running `script` with this Node, in the test's folder (so teardown finds any orphan). */
function managed (name: string, script: string, ...more: string[]): string[] {
  return [
    `  - name: ${name}`,
    `    command: ${JSON.stringify(process.execPath)}`,
    `    args: [-e, ${JSON.stringify(script)}]`,
    ...more.map((line) => `    ${line}`)
  ]
}

function config (...processes: string[][]): string {
  return ['server:', '  listen: "127.0.0.1:0"', 'managed_processes:', ...processes.flat(), ''].join('\n')
}

const FOREVER = "console.log('up ' + process.pid); setInterval(() => {}, 1000)"

const startOf = (name: string) => (line: LogLine): boolean => line.msg === 'managed process started' && line.process === name

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function startedPids (nav: Running, name: string, count: number): Promise<number[]> {
  await nav.waitForLog(() => nav.logs.filter(startOf(name)).length >= count)
  return nav.logs.filter(startOf(name)).map((line) => line.pid as number)
}

test('a managed process that crashes is restarted with backoff, and its output is logged with its name', async (t) => {
  const dir = tempDir({ 'navigator.yml': config(managed('crasher', "console.log('boot'); console.error('oops'); process.exit(3)", 'auto_restart: true')) })
  const nav = await startNavigator(t, dir)
  const pids = await startedPids(nav, 'crasher', 3)
  t.equal(new Set(pids).size, pids.length, 'each start is a new process')
  const restart = await nav.waitForLog((line) => line.msg === 'managed process restarting after backoff' && line.process === 'crasher')
  t.equal(restart.delayMs, 100, 'the first restart waits the initial backoff')
  const crash = await nav.waitForLog((line) => line.msg === 'managed process exited unexpectedly')
  t.match(crash, { process: 'crasher', code: 3 })
  t.match(await nav.waitForLog((line) => line.msg === 'boot'), { process: 'crasher', stream: 'stdout', level: 30 })
  t.match(await nav.waitForLog((line) => line.msg === 'oops'), { process: 'crasher', stream: 'stderr', level: 40 })
})

test('without auto_restart a managed process that exits stays down', async (t) => {
  const dir = tempDir({ 'navigator.yml': config(managed('once', 'process.exit(1)')) })
  const nav = await startNavigator(t, dir)
  await nav.waitForLog((line) => line.msg === 'managed process exited unexpectedly' && line.process === 'once')
  t.notOk(nav.logs.some((line) => line.msg === 'managed process restarting after backoff'), 'no restart is scheduled')
})

test('a managed process starts before Navigator listens and is stopped, with its process group, at shutdown', async (t) => {
  const child = "require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); " + FOREVER
  const dir = tempDir({ 'navigator.yml': config(managed('worker', child)) })
  const nav = await startNavigator(t, dir)
  const started = nav.logs.findIndex(startOf('worker'))
  t.ok(started !== -1 && started < nav.logs.findIndex((line) => line.msg === 'listening'), 'started before listening')
  const pid = nav.logs[started].pid as number
  t.ok(alive(pid))
  nav.child.kill('SIGTERM')
  t.same(await nav.exited, { code: 0, signal: null }, 'Navigator exits 0')
  t.ok(nav.logs.some((line) => line.msg === 'managed process stopped' && line.pid === pid))
  t.notOk(alive(pid), 'the managed process is gone')
  // The grandchild it spawned is checked by the teardown: no process may be left working in the test's folder.
})

test('start_delay is honoured: the process starts that long after Navigator starts, without delaying listening', async (t) => {
  const dir = tempDir({ 'navigator.yml': config(managed('late', FOREVER, 'start_delay: 800ms')) })
  const nav = await startNavigator(t, dir)
  t.notOk(nav.logs.some(startOf('late')), 'not started when Navigator listens')
  const waiting = await nav.waitForLog((line) => line.msg === 'managed process waiting for its start_delay')
  t.equal(waiting.delayMs, 800)
  const started = await nav.waitForLog(startOf('late'))
  t.ok((started.time as number) - (waiting.time as number) >= 790, `started ${(started.time as number) - (waiting.time as number)} ms after`)
})

test('a reload keeps an unchanged managed process running and restarts a changed one', async (t) => {
  const dir = tempDir({ 'navigator.yml': config(managed('steady', FOREVER), managed('changing', FOREVER, 'env: { GENERATION: "1" }')) })
  const nav = await startNavigator(t, dir)
  const [steady] = await startedPids(nav, 'steady', 1)
  const [before] = await startedPids(nav, 'changing', 1)

  writeConfig(dir, config(managed('steady', FOREVER, 'auto_restart: true'), managed('changing', FOREVER, 'env: { GENERATION: "2" }')))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')
  const changing = await startedPids(nav, 'changing', 2)
  t.not(changing[1], before, 'the changed one runs as a new process')
  t.notOk(alive(before), 'its previous process is gone')
  t.same(nav.logs.filter(startOf('steady')).map((line) => line.pid), [steady], 'the unchanged one was not restarted')
  t.ok(alive(steady))

  writeConfig(dir, config(managed('steady', FOREVER)))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'managed process stopped' && line.pid === changing[1])
  t.notOk(alive(changing[1]), 'a removed one is stopped')
  t.ok(alive(steady))
})

test('--check reports a managed process whose command or working directory does not exist, with positions', async (t) => {
  const dir = tempDir({
    'navigator.yml': ['managed_processes:', '  - name: a', '    command: no-such-worker-program', '  - name: b', '    command: sh', '    working_dir: missing', ''].join('\n')
  })
  const file = join(dir, 'navigator.yml')
  const result = await runCli(['--check', file])
  t.equal(result.code, 2)
  const lines = result.stderr.trim().split('\n')
  t.equal(lines.length, 2, result.stderr)
  t.match(lines[0], `${file}:3:14: managed_processes.0.command: the command "no-such-worker-program" is not on PATH`)
  t.match(lines[1], `${file}:6:18: managed_processes.1.working_dir: the working directory ${join(dir, 'missing')} does not exist`)
})
