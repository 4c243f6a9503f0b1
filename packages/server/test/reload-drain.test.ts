import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'tap'
import { parseConfig } from '@navigator/config'
import { buildServer } from '../src/server.js'
import WebSocket from 'ws'
import { BIN, http, siteConfig, startNavigator, stopNavigator, tempDir, tenant, tenantStartPort, writeConfig } from './helpers.js'

async function siteYaml (startPort: number, greeting: string): Promise<string> {
  return await siteConfig({
    server: ['  shutdown_timeout: 10s'],
    startPort,
    tenants: [tenant('app', '/app', 'env:', `  TENANT_GREETING: ${JSON.stringify(greeting)}`)]
  })
}

interface View { pid: number, env: { TENANT_GREETING?: string } }

function processGone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

test('SIGHUP after a tenant env change lets a slow request finish on the old process, sends the next request to the new one, then stops the old one', async (t) => {
  const startPort = tenantStartPort()
  const dir = tempDir({ 'navigator.yml': await siteYaml(startPort, 'one') })
  const nav = await startNavigator(t, dir)
  const before = JSON.parse((await http(nav.address, '/app/')).text) as View
  t.equal(before.env.TENANT_GREETING, 'one')

  // Long enough to outlast the reload and the new tenant's cold start on a loaded machine, well within the
  // shutdown_timeout (10s) that bounds the old process's drain.
  const slow = http(nav.address, '/app/slow?ms=8000')
  await nav.waitForLog((line) => line.msg === 'slow request started')
  writeConfig(dir, await siteYaml(startPort, 'two'))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')

  const after = JSON.parse((await http(nav.address, '/app/')).text) as View
  t.equal(after.env.TENANT_GREETING, 'two', 'the next request sees the new env')
  t.not(after.pid, before.pid, 'and is answered by a new process')
  t.notOk(processGone(before.pid), 'the old process still runs while its request is in flight')

  const answer = await slow
  t.equal(answer.status, 200, 'the slow request completes')
  t.equal(answer.text, 'slow done\n')
  const deadline = Date.now() + 8000
  while (!processGone(before.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(processGone(before.pid), 'the old process is gone afterwards')
  t.equal(JSON.parse((await http(nav.address, '/app/')).text).pid, after.pid, 'the new process keeps serving')
})

test('SIGHUP after a tenant env change keeps an open WebSocket to the old process working', async (t) => {
  const startPort = tenantStartPort()
  const dir = tempDir({ 'navigator.yml': await siteYaml(startPort, 'one') })
  const nav = await startNavigator(t, dir)
  const ws = new WebSocket(nav.address.replace(/^http/, 'ws') + '/app/cable')
  t.teardown(() => { ws.terminate() })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const echo = async (text: string): Promise<string> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('no echo within 5 s')) }, 5000)
    ws.once('message', (data) => { clearTimeout(timer); resolve(String(data)) })
    ws.send(text)
  })
  t.equal(await echo('before'), 'before')

  writeConfig(dir, await siteYaml(startPort, 'two'))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')
  const after = JSON.parse((await http(nav.address, '/app/')).text) as View
  t.equal(after.env.TENANT_GREETING, 'two', 'new requests reach the new process')
  t.equal(await echo('after'), 'after', 'the WebSocket opened before the reload still works')
  t.equal(ws.readyState, WebSocket.OPEN)
})

// Preloaded into Navigator only: its HTTP server's listen() is held for 3 s after a marker on stderr, so that a
// signal lands, deterministically, after the eager children were started and before Navigator listens.
const HOLD_LISTEN = [
  "import http from 'node:http'",
  "if (process.argv[1]?.endsWith('navigator.js')) {",
  '  const listen = http.Server.prototype.listen',
  '  http.Server.prototype.listen = function (...args) {',
  "    process.stderr.write('LISTEN HELD\\n')",
  '    setTimeout(() => { listen.apply(this, args) }, 3000)',
  '    return this',
  '  }',
  '}',
  ''
].join('\n')

async function startHeld (t: { teardown: (fn: () => unknown) => void }, yaml: string): Promise<{ child: ChildProcess, logs: Array<Record<string, unknown>>, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>, held: Promise<void>, waitForLog: (msg: string) => Promise<void> }> {
  const dir = tempDir({ 'navigator.yml': yaml, 'hold-listen.mjs': HOLD_LISTEN })
  const child = spawn(process.execPath, ['--import', join(dir, 'hold-listen.mjs'), BIN, join(dir, 'navigator.yml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, LOG_LEVEL: 'info' }
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  t.teardown(async () => { await stopNavigator(child, exited, dir) })
  const logs: Array<Record<string, unknown>> = []
  const waiters: Array<{ msg: string, resolve: () => void }> = []
  let pending = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString()
    let newline
    while ((newline = pending.indexOf('\n')) !== -1) {
      let line: Record<string, unknown>
      try { line = JSON.parse(pending.slice(0, newline)) } catch { line = {} }
      pending = pending.slice(newline + 1)
      logs.push(line)
      for (const waiter of waiters) if (line.msg === waiter.msg) waiter.resolve()
    }
  })
  const held = new Promise<void>((resolve, reject) => {
    let errors = ''
    child.stderr!.on('data', (chunk: Buffer) => {
      errors += chunk.toString()
      if (errors.includes('LISTEN HELD')) resolve()
    })
    void exited.then(() => { reject(new Error(`navigator exited before listening: ${errors}`)) })
  })
  const waitForLog = async (msg: string): Promise<void> => {
    if (logs.some((line) => line.msg === msg)) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no '${msg}' log line within 10 s`)) }, 10_000)
      waiters.push({ msg, resolve: () => { clearTimeout(timer); resolve() } })
    })
  }
  return { child, logs, exited, held, waitForLog }
}

async function eagerYaml (): Promise<string> {
  return await siteConfig({ tenants: [tenant('app', '/app', 'start: eager')] })
}

test('SIGTERM during start-up stops the eager tenant already started and exits 0', async (t) => {
  const nav = await startHeld(t, await eagerYaml())
  await nav.held
  await nav.waitForLog('tenant starting')
  const pid = nav.logs.find((line) => line.msg === 'tenant starting')?.pid as number
  t.ok(Number.isInteger(pid), 'the eager tenant was spawned before Navigator listens')
  nav.child.kill('SIGTERM')
  const { code, signal } = await nav.exited
  t.equal(signal, null, 'Navigator is not killed by the signal')
  t.equal(code, 0, 'it exits 0')
  t.ok(processGone(pid), 'the eager tenant is stopped, not orphaned')
  t.ok(nav.logs.some((line) => line.msg === 'signal received during start-up: stopping'), 'the stop during start-up is logged')
})

test('SIGHUP during start-up is applied once Navigator listens', async (t) => {
  const nav = await startHeld(t, await eagerYaml())
  await nav.held
  nav.child.kill('SIGHUP')
  await nav.waitForLog('listening')
  await nav.waitForLog('configuration reloaded')
  const listening = nav.logs.findIndex((line) => line.msg === 'listening')
  const reloading = nav.logs.findIndex((line) => line.msg === 'reloading configuration')
  t.ok(reloading > listening, 'the reload ran after Navigator started listening')
  t.equal(nav.child.exitCode, null, 'Navigator still runs')
})

test('SIGTERM waits for a WebSocket handshake still waiting on a starting tenant, then closes it with 1001', async (t) => {
  const dir = tempDir({
    'navigator.yml': await siteConfig({
      server: ['  shutdown_timeout: 10s'],
      tenants: [tenant('app', '/app', 'env: { READY_DELAY_MS: "1500" }')]
    })
  })
  const nav = await startNavigator(t, dir)
  const ws = new WebSocket(nav.address.replace(/^http/, 'ws') + '/app/cable')
  t.teardown(() => { ws.terminate() })
  const outcome = new Promise<{ opened: boolean, code: number }>((resolve, reject) => {
    let opened = false
    const timer = setTimeout(() => { reject(new Error('the WebSocket was neither opened and closed within 15 s')) }, 15_000)
    ws.once('open', () => { opened = true })
    ws.once('close', (code) => { clearTimeout(timer); resolve({ opened, code }) })
    ws.once('error', () => {})
  })
  await nav.waitForLog((line) => line.msg === 'tenant starting')
  nav.child.kill('SIGTERM')
  const { opened, code } = await outcome
  t.ok(opened, 'the handshake completed during the drain')
  t.equal(code, 1001, 'then the WebSocket was closed as going away')
  t.equal((await nav.exited).code, 0)
})

test('a reload whose new configuration fails to build changes nothing: the old routes and processes stay', async (t) => {
  const dir = tempDir()
  const config = parseConfig(await siteConfig({ server: ['  health_check: /up'], tenants: [tenant('app', '/app')] }), { dir })
  const navigator = await buildServer(config, { env: { LOG_LEVEL: 'silent' } })
  t.teardown(async () => { await navigator.close() })
  const before = navigator.fastify
  const next = parseConfig('server:\n  listen: "127.0.0.1:0"\n  health_check: /changed\n', { dir })
  // A broken normalised config (the loader would never produce it) makes building the new generation throw.
  const broken = { ...next, applications: { ...next.applications, tenants: null as never } }
  await t.rejects(navigator.reload(broken), 'the reload fails')
  t.equal(navigator.fastify, before, 'the previous Fastify instance still answers')
  t.equal(navigator.config, config, 'the previous configuration stays current')
  t.equal(navigator.supervisor.tenantStatus('app').state, 'stopped', 'the supervisor still knows the old tenant')
  t.equal((await navigator.fastify.inject({ url: '/up' })).statusCode, 200, 'the old health check still answers')
})
