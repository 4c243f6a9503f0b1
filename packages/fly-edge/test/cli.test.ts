import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { DEFAULT_NAVIGATOR_BIN } from '../src/launch.js'
import { request } from './fixtures.js'
import { DEMO_CONFIG } from './e2e-helpers.js'

const BIN = fileURLToPath(new URL('../bin/fly-edge.js', import.meta.url))
const DEMO = fileURLToPath(new URL('../dist/demo.js', import.meta.url))

interface Run { child: ChildProcess, lines: string[], events: EventEmitter, exited: Promise<number | null> }

function run (script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const events = new EventEmitter()
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => { lines.push(line); events.emit('line', line) })
  }
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return { child, lines, events, exited }
}

/** Resolves with the first output line matching `pattern`; rejects when the process exits first or after `ms`. */
function waitForLine (r: Run, pattern: RegExp, ms = 60_000): Promise<RegExpExecArray> {
  for (const line of r.lines) {
    const match = pattern.exec(line)
    if (match !== null) return Promise.resolve(match)
  }
  return new Promise((resolve, reject) => {
    const onLine = (line: string): void => {
      const match = pattern.exec(line)
      if (match === null) return
      finish()
      resolve(match)
    }
    const finish = (): void => { clearTimeout(timer); r.events.off('line', onLine) }
    const timer = setTimeout(() => { finish(); reject(new Error(`no line matching ${pattern}:\n${r.lines.join('\n')}`)) }, ms)
    r.events.on('line', onLine)
    void r.exited.then(() => { finish(); reject(new Error(`exited before ${pattern}:\n${r.lines.join('\n')}`)) })
  })
}

test('fly-edge --help prints the usage and exits 0', async (t) => {
  const r = run(BIN, ['--help'])
  t.equal(await r.exited, 0)
  t.match(r.lines.join('\n'), /Usage: fly-edge --config <navigator.yml>/)
  t.match(r.lines.join('\n'), /--machines <n>/)
})

test('fly-edge without --config or with a bad option explains and exits 2', async (t) => {
  const missing = run(BIN, [])
  t.equal(await missing.exited, 2)
  t.match(missing.lines.join('\n'), /--config is required/)
  const bad = run(BIN, ['--config', DEMO_CONFIG, '--machines', 'two'])
  t.equal(await bad.exited, 2)
  t.match(bad.lines.join('\n'), /--machines must be a whole number/)
  const rule = run(BIN, ['--config', DEMO_CONFIG, '--replay-cache', 'path_prefix=/,ttl_seconds=5,type=cookie,name=sid'])
  t.equal(await rule.exited, 2)
  t.match(rule.lines.join('\n'), /--replay-cache: .*ttlSeconds must be a number >= 10/)
})

test('fly-edge --config launches the Machines, serves through the edge, and stops everything on SIGTERM', async (t) => {
  const r = run(BIN, ['--config', DEMO_CONFIG, '--machines', '2', '--port', '0', '--regions', 'ord,ams',
    '--replay-cache', 'path_prefix=/,ttl_seconds=60,type=cookie,name=_navigator_machine'])
  t.teardown(() => { if (r.child.exitCode === null) r.child.kill('SIGKILL') })
  const [, url] = await waitForLine(r, /^fly-edge listening on (http:\/\/\S+)/)
  const [, flycast] = await waitForLine(r, /^ {2}Flycast \(navigator-demo\.flycast\) at (http:\/\/\S+)/)
  await waitForLine(r, /^ {2}Machine \S+ \(ams\)/)
  const ids = r.lines.flatMap((line) => /^ {2}Machine (\S+) \((ord|ams)\) at \S+, private address http:\S+, NAVIGATOR_DATA \//.exec(line)?.[1] ?? [])
  t.equal(ids.length, 2)
  const reply = await request(`${url}/app/whoami`)
  t.equal(reply.status, 200)
  t.ok(ids.includes(reply.json<{ machine: string }>().machine))
  const forced = await request(`${flycast}/app/whoami`, { headers: { 'fly-force-instance-id': ids[1] } })
  t.equal(forced.json<{ machine: string }>().machine, ids[1], 'the printed Flycast address serves')
  r.child.kill('SIGTERM')
  t.equal(await r.exited, 0)
  await t.rejects(request(`${url}/app/whoami`), 'the edge is closed')
})

test('the demo command prints its URL and explanation, serves the page, and stops everything on SIGINT', async (t) => {
  const r = run(DEMO, ['--port', '0'])
  t.teardown(() => { if (r.child.exitCode === null) r.child.kill('SIGKILL') })
  const [, url] = await waitForLine(r, /^Navigator demo: open (http:\/\/\S+)\/app\/$/)
  await waitForLine(r, /sticky-session cookie keeps your browser/)
  const page = await request(`${url}/app/`)
  t.equal(page.status, 200)
  t.match(page.body, /Served by Machine/)
  t.match(String(page.headers['set-cookie']), /_navigator_machine=/)
  r.child.kill('SIGINT')
  t.equal(await r.exited, 0)
})

test('a child that keeps exiting shows in fly-edge\'s output without --verbose, under its Machine\'s id', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-crash-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = join(dir, 'navigator.yml')
  await writeFile(config, [
    'server:',
    '  listen: 3000',
    'applications:',
    '  standalone_servers:',
    '    - name: crasher',
    '      match_path: /crash',
    '      command: node',
    '      args: [-e, "console.error(\'crasher: cannot start\'); process.exit(3)"]',
    '      port: 4001',
    ''
  ].join('\n'))
  const r = run(BIN, ['--config', config, '--machines', '2', '--port', '0', '--regions', 'iad,ord'])
  t.teardown(() => { if (r.child.exitCode === null) r.child.kill('SIGKILL') })
  await waitForLine(r, /^ {2}Machine \S+ \(ord\)/)
  const ids = r.lines.flatMap((line) => /^ {2}Machine (\S+) /.exec(line)?.[1] ?? [])
  t.equal(ids.length, 2)
  for (const id of ids) {
    await waitForLine(r, new RegExp(`^\\[${id}\\] warn crasher: standalone server exited unexpectedly \\(code 3\\)$`), 30_000)
    await waitForLine(r, new RegExp(`^\\[${id}\\] warn crasher \\(stderr\\): crasher: cannot start$`), 30_000)
  }
  t.notOk(r.lines.some((line) => /"level":30|standalone server ready|"msg":"listening"/.test(line)), 'info lines stay hidden without --verbose')
  r.child.kill('SIGTERM')
  t.equal(await r.exited, 0)
})

test('navigator --check accepts the demo config on its own, without the edge\'s variables', async (t) => {
  const { NAVIGATOR_PORT: _port, NAVIGATOR_DATA: _data, ...env } = process.env
  const r = run(DEFAULT_NAVIGATOR_BIN, ['--check', DEMO_CONFIG], env)
  t.equal(await r.exited, 0, r.lines.join('\n'))
  t.match(r.lines.join('\n'), /navigator\.yml: ok/)
})
