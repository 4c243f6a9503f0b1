import { test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, startNavigator, tempDir } from './helpers.js'

const CONFIG = ['server:', '  listen: "127.0.0.1:0"', ''].join('\n')

/** `navigator -s <action>` with NAVIGATOR_PID_FILE set, run to completion. */
async function control (pidFile: string, ...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NAVIGATOR_PID_FILE: pidFile } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
  const code = await new Promise<number | null>((resolve) => { child.once('exit', (c) => { resolve(c) }) })
  clearTimeout(timer)
  return { code, stdout, stderr }
}

test('navigator -s reload reloads the running Navigator and -s stop stops it; its pid file goes with it', async (t) => {
  const dir = tempDir({ 'navigator.yml': CONFIG })
  const pidFile = join(dir, 'navigator.pid')
  const nav = await startNavigator(t, dir, { NAVIGATOR_PID_FILE: pidFile })
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(nav.child.pid), 'the pid file holds its process id')

  const reload = await control(pidFile, '-s', 'reload')
  t.equal(reload.code, 0, reload.stderr)
  t.match(reload.stdout, `sent SIGHUP to navigator (pid ${String(nav.child.pid)})`)
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')

  const stop = await control(pidFile, '-s', 'stop')
  t.equal(stop.code, 0, stop.stderr)
  t.same(await nav.exited, { code: 0, signal: null }, 'Navigator stopped and exited 0')
  t.notOk(existsSync(pidFile), 'the pid file is removed at exit')
})

test('navigator -s fails clearly, with exit status 1, when no Navigator runs', async (t) => {
  const dir = tempDir()
  const pidFile = join(dir, 'navigator.pid')
  const missing = await control(pidFile, '-s', 'reload')
  t.equal(missing.code, 1)
  t.equal(missing.stderr, `navigator: no Navigator is running: there is no pid file ${pidFile}\n`)

  // The id of a process that has exited: a pid file left behind by a Navigator that was killed.
  const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim()
  writeFileSync(pidFile, `${gone}\n`)
  const stale = await control(pidFile, '-s', 'stop')
  t.equal(stale.code, 1)
  t.match(stale.stderr, `the pid file ${pidFile} is stale`)

  writeFileSync(pidFile, 'garbage\n')
  const garbage = await control(pidFile, '-s', 'stop')
  t.equal(garbage.code, 1)
  t.match(garbage.stderr, 'holds no process id')
})

test('navigator -s with an unknown action is a usage error (exit 2)', async (t) => {
  const bad = await control('/nonexistent/navigator.pid', '-s', 'restart')
  t.equal(bad.code, 2)
  t.match(bad.stderr, 'navigator: -s takes reload or stop, not restart')
})
