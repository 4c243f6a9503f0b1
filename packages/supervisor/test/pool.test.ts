import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'tap'
import type { TenantConfig } from '@navigator/config'
import { Supervisor } from '../src/index.js'
import { ownCgroupDir } from '../src/cgroup.js'
import { applicationsConfig, eventually, fixture, getJson, pidRunning, recordingLogger, tenantConfig } from './helpers.js'

const POOL_APP = fixture('pool-app.mjs')

function poolTenant (name: string, overrides: Partial<TenantConfig> = {}): TenantConfig {
  return tenantConfig(name, { args: [POOL_APP], ...overrides })
}

async function pidOf (supervisor: Supervisor, name: string): Promise<number> {
  await supervisor.ensureTenant(name)
  return supervisor.tenantStatus(name).pid as number
}

test('max_size: starting one more tenant stops the least recently used idle one, with a log line naming both', async (t) => {
  const applications = await applicationsConfig({ maxSize: 2, tenants: [poolTenant('a'), poolTenant('b'), poolTenant('c')] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())

  const a = await pidOf(supervisor, 'a')
  const b = await pidOf(supervisor, 'b')
  supervisor.trackRequest('a')()   // a is used after b: b is the least recently used
  const c = await pidOf(supervisor, 'c')

  t.notOk(pidRunning(b), 'b, the least recently used idle tenant, was stopped')
  t.equal(supervisor.tenantStatus('b').state, 'stopped')
  t.ok(pidRunning(a), 'a is still running')
  t.ok(pidRunning(c), 'c runs')
  t.match(lines.filter((line) => line.msg === 'tenant stopped to make room (max_size 2)'), [{ process: 'b', for: 'c', maxSize: 2 }])

  // b again: now a is the least recently used idle one.
  const b2 = await pidOf(supervisor, 'b')
  t.not(b2, b)
  t.notOk(pidRunning(a), 'a was stopped to make room for b')
  t.ok(pidRunning(c))
  t.equal([supervisor.tenantStatus('a'), supervisor.tenantStatus('b'), supervisor.tenantStatus('c')].filter((status) => status.pid !== null).length, 2, 'never more than max_size running')
})

test('max_size: a tenant with a request in flight or an open WebSocket is never stopped; the new start waits until one is idle', async (t) => {
  const applications = await applicationsConfig({ maxSize: 2, tenants: [poolTenant('busy'), poolTenant('socket'), poolTenant('late')] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())

  const busy = await pidOf(supervisor, 'busy')
  const socket = await pidOf(supervisor, 'socket')
  const requestDone = supervisor.trackRequest('busy')
  const socketClosed = supervisor.trackWebSocket('socket')

  let settled = false
  const late = supervisor.ensureTenant('late').finally(() => { settled = true })
  t.ok(await eventually(() => lines.some((line) => line.msg === 'every running tenant is busy; waiting for one to become idle (max_size 2)')), 'the start says it waits')
  t.notOk(settled, 'it waits while both are busy')
  t.equal(supervisor.tenantStatus('late').pid, null, 'nothing spawned meanwhile')
  t.ok(pidRunning(busy) && pidRunning(socket), 'neither busy tenant was stopped')

  requestDone()
  await late
  t.notOk(pidRunning(busy), 'the tenant whose request finished was stopped to make room')
  t.ok(pidRunning(socket), 'the one with the open WebSocket still runs')
  t.equal(supervisor.tenantStatus('late').state, 'ready')
  socketClosed()
})

test('max_size: when no tenant becomes idle within the startup timeout, the start fails with NAV_SUPERVISOR_STARTUP_TIMEOUT and nothing is stopped', async (t) => {
  const applications = await applicationsConfig({ maxSize: 1, startupTimeoutMs: 5000, tenants: [poolTenant('held'), poolTenant('waiting', { startupTimeoutMs: 700 })] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())
  const held = await pidOf(supervisor, 'held')
  const done = supervisor.trackRequest('held')
  t.teardown(done)

  await t.rejects(supervisor.ensureTenant('waiting'), { code: 'NAV_SUPERVISOR_STARTUP_TIMEOUT', message: /700 ms/ }, 'bounded by the waiting tenant\'s own startup_timeout')
  t.ok(pidRunning(held), 'the busy tenant still runs')
  t.equal(supervisor.tenantStatus('waiting').state, 'stopped')
  t.match(lines.find((line) => line.msg === 'no running tenant became idle within the startup timeout (max_size 1)'), { level: 'warn', process: 'waiting', running: ['held'] })
})

test('max_size: stop() while a start waits for room fails it with NAV_SUPERVISOR_STOPPED at once', async (t) => {
  const applications = await applicationsConfig({ maxSize: 1, startupTimeoutMs: 60_000, tenants: [poolTenant('held'), poolTenant('waiting')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  await supervisor.ensureTenant('held')
  const done = supervisor.trackRequest('held')
  const waiting = t.rejects(supervisor.ensureTenant('waiting'), { code: 'NAV_SUPERVISOR_STOPPED' })
  const began = Date.now()
  await supervisor.stop()
  await waiting
  t.ok(Date.now() - began < 30_000, 'not after the 60 s startup timeout')
  done()
})

test('max_size: the stopped tenant goes through its normal stop, tenant.stop hooks included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-pool-'))
  const marker = join(dir, 'stopped')
  const stopHook = { command: process.execPath, args: ['-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, process.env.PORT)`], timeoutMs: 5000, reloadConfig: null }
  const applications = await applicationsConfig({
    maxSize: 1,
    tenants: [poolTenant('old', { hooks: { start: [], stop: [stopHook] } }), poolTenant('new')]
  })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const { port } = await supervisor.ensureTenant('old')
  await supervisor.ensureTenant('new')
  t.equal(readFileSync(marker, 'utf8'), String(port), 'the stop hook ran, with the tenant\'s environment, before the new one was ready')
})

test('max_size: while its stop hooks run, the stopped tenant takes no request', async (t) => {
  const slowStop = { command: process.execPath, args: ['-e', 'setTimeout(() => {}, 1000)'], timeoutMs: 5000, reloadConfig: null }
  const applications = await applicationsConfig({
    maxSize: 1,
    tenants: [poolTenant('old', { hooks: { start: [], stop: [slowStop] } }), poolTenant('new')]
  })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())
  const first = await pidOf(supervisor, 'old')
  const making = supervisor.ensureTenant('new')
  t.ok(await eventually(() => lines.some((line) => line.msg === 'hook started' && line.hook === 'tenant.stop')), 'the stop hook runs')
  // The server routes to a tenant at once only when its state is `ready` (processManager.readyPort).
  t.equal(supervisor.tenantStatus('old').state, 'stopping', 'the tenant says it is stopping from the start of its hooks: no request is routed to it')
  t.ok(pidRunning(first), 'while its process still runs')
  await making
  t.notOk(pidRunning(first), 'the first process is gone once the new tenant is ready')
  const { port } = await supervisor.ensureTenant('old')
  t.not(supervisor.tenantStatus('old').pid, first, 'asked for again, it runs a new process')
  t.equal(supervisor.tenantStatus('old').port, port)
})

test('track_websockets false: an open WebSocket keeps the tenant neither from max_size nor from the idle stop', async (t) => {
  const applications = await applicationsConfig({
    maxSize: 1,
    idleTimeoutMs: 0,
    trackWebSockets: true,
    tenants: [poolTenant('untracked', { trackWebSockets: false }), poolTenant('other'), poolTenant('tracked'), poolTenant('squeezed', { startupTimeoutMs: 600 })]
  })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())

  const untracked = await pidOf(supervisor, 'untracked')
  const closed = supervisor.trackWebSocket('untracked')
  t.equal(supervisor.openWebSockets('untracked'), 1, 'the WebSocket is still counted')
  await supervisor.ensureTenant('other')
  t.notOk(pidRunning(untracked), 'a tenant with only untracked WebSockets was stopped to make room')
  closed()

  // The applications-wide default (true) applies to the others: `tracked` with a WebSocket is not stopped.
  const tracked = await pidOf(supervisor, 'tracked')
  const trackedClosed = supervisor.trackWebSocket('tracked')
  await t.rejects(supervisor.ensureTenant('squeezed'), { code: 'NAV_SUPERVISOR_STARTUP_TIMEOUT' })
  t.ok(pidRunning(tracked), 'a tenant with a tracked WebSocket was not stopped')
  trackedClosed()
})

test('track_websockets false: the idle timeout stops a tenant whose only activity is an open WebSocket', async (t) => {
  const applications = await applicationsConfig({
    idleTimeoutMs: 300,
    trackWebSockets: false,
    tenants: [poolTenant('chatty'), poolTenant('kept', { trackWebSockets: true })]
  })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const chatty = await pidOf(supervisor, 'chatty')
  const kept = await pidOf(supervisor, 'kept')
  const closeChatty = supervisor.trackWebSocket('chatty')
  const closeKept = supervisor.trackWebSocket('kept')
  t.ok(await eventually(() => !pidRunning(chatty), 10_000), 'stopped as idle despite its open WebSocket')
  t.ok(pidRunning(kept), 'the tenant that tracks WebSockets (its own override) is kept')
  closeChatty()
  closeKept()
})

test('a tenant\'s own health_check and startup_timeout override the applications\' ones', async (t) => {
  const applications = await applicationsConfig({
    healthCheck: '/up',
    startupTimeoutMs: 20_000,
    tenants: [poolTenant('custom', { healthCheck: '/custom/health' }), poolTenant('plain'), poolTenant('impatient', { startupTimeoutMs: 400, env: { READY_DELAY_MS: '60000' } })]
  })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())

  const custom = await getJson((await supervisor.ensureTenant('custom')).port, '/info')
  t.ok(custom.requests.length > 0)
  t.ok(custom.requests.every((request: { path: string }) => request.path === '/custom/health'), 'probed on its own path only')
  const plain = await getJson((await supervisor.ensureTenant('plain')).port, '/info')
  t.ok(plain.requests.every((request: { path: string }) => request.path === '/up'), 'the others on applications.health_check')

  await t.rejects(supervisor.ensureTenant('impatient'), { code: 'NAV_SUPERVISOR_STARTUP_TIMEOUT', message: /within 400 ms/ })
})

test('start_delay: the first health check comes that long after the spawn', async (t) => {
  const applications = await applicationsConfig({ startDelayMs: 800, tenants: [poolTenant('delayed')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const info = await getJson((await supervisor.ensureTenant('delayed')).port, '/info')
  // uptime counts from the process start, a little after the spawn: the first probe cannot come earlier than this.
  t.ok(info.requests[0].uptimeMs >= 700, `first probe at ${info.requests[0].uptimeMs} ms of the process's life`)
})

test('port_env_var: the port is passed in that variable, and in PORT too', async (t) => {
  const applications = await applicationsConfig({ portEnvVar: 'SERVER_PORT', tenants: [poolTenant('framework', { env: { LISTEN_PORT_FROM: 'SERVER_PORT' } })] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const { port } = await supervisor.ensureTenant('framework')
  const info = await getJson(port, '/info')
  t.equal(info.port, port, 'the app listened on $SERVER_PORT')
  t.same(info.env, { PORT: String(port), SERVER_PORT: String(port) })
})

const root = process.getuid?.() === 0

test(`user and group: ${root ? 'as root, the tenant runs as nobody' : 'without root, the tenant cannot start'}`, async (t) => {
  const applications = await applicationsConfig({ user: 'nobody', tenants: [poolTenant('dropped'), poolTenant('ghost', { user: 'no-such-user-navigator' })] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())
  if (root) {
    const info = await getJson((await supervisor.ensureTenant('dropped')).port, '/info')
    t.equal(info.uid, Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })), 'uid of nobody')
    t.equal(info.gid, Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })), 'and its primary group')
    await t.rejects(supervisor.ensureTenant('ghost'), { code: 'NAV_SUPERVISOR_CANNOT_START', message: /no user `no-such-user-navigator`/ })
  } else {
    await t.rejects(supervisor.ensureTenant('dropped'), { code: 'NAV_SUPERVISOR_CANNOT_START', message: /need Navigator to run as root/ })
    t.match(lines.find((line) => line.msg === 'tenant cannot start'), { process: 'dropped', reason: /run as root/ })
  }
})

test('user and group: a group of its own overrides the user\'s primary group', { skip: root ? false : 'needs root' }, async (t) => {
  const gid = Number(execFileSync('getent', ['group', 'nogroup']).toString().split(':')[2] ?? execFileSync('id', ['-g', 'nobody']).toString())
  const applications = await applicationsConfig({ user: 'nobody', tenants: [poolTenant('grouped', { group: String(gid) })] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const info = await getJson((await supervisor.ensureTenant('grouped')).port, '/info')
  t.equal(info.gid, gid)
})

/** Whether cgroup v2 memory limits can be set on this machine, found out independently of the supervisor. */
function cgroupWritable (): boolean {
  const dir = ownCgroupDir()
  if (dir === null) return false
  try {
    if (!readFileSync(join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) return false
    const enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/)
    if (!enabled.includes('memory')) writeFileSync(join(dir, 'cgroup.subtree_control'), '+memory\n')
    return true
  } catch {
    return false
  }
}

test(`memory_limit on this machine: ${cgroupWritable() ? 'memory.max is set' : 'one warning, no limit'}`, async (t) => {
  const applications = await applicationsConfig({ memoryLimit: 512 * 1024 ** 2, tenants: [poolTenant('small'), poolTenant('large', { memoryLimit: 1024 ** 3 })] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())
  await supervisor.start()
  const small = await pidOf(supervisor, 'small')
  const large = await pidOf(supervisor, 'large')
  const warnings = lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('memory_limit is not enforced: '))
  if (cgroupWritable()) {
    t.equal(warnings.length, 0)
    const dir = ownCgroupDir() as string
    t.equal(readFileSync(join(dir, `navigator-small-${small}`, 'memory.max'), 'utf8').trim(), String(512 * 1024 ** 2))
    t.equal(readFileSync(join(dir, `navigator-large-${large}`, 'memory.max'), 'utf8').trim(), String(1024 ** 3), 'the tenant\'s own limit')
    t.match(readFileSync(join(dir, `navigator-small-${small}`, 'cgroup.procs'), 'utf8'), new RegExp(`^${small}$`, 'm'))
    await supervisor.stop()
    t.notOk(existsSync(join(dir, `navigator-small-${small}`)), 'removed once the tenant stopped')
  } else {
    t.equal(warnings.length, 1, 'one warning for two tenants with limits')
    t.match(warnings[0], { level: 'warn', reason: /\S/ })
    t.ok(pidRunning(small) && pidRunning(large), 'the tenants run without a limit')
  }
})

test('memory_limit with a cgroup v2 directory: the tenant\'s cgroup gets memory.max and its pid', async (t) => {
  // A directory laid out like a cgroup v2 one; the kernel's own files cannot be made here, but every write can be read.
  const dir = mkdtempSync(join(tmpdir(), 'navigator-cgroup-'))
  writeFileSync(join(dir, 'cgroup.controllers'), 'cpu io memory pids\n')
  writeFileSync(join(dir, 'cgroup.subtree_control'), '')
  const applications = await applicationsConfig({ memoryLimit: 256 * 1024 ** 2, tenants: [poolTenant('limited/one')] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger, cgroupDir: dir })
  t.teardown(() => supervisor.stop())
  await supervisor.start()
  const pid = await pidOf(supervisor, 'limited/one')
  t.equal(readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8'), '+memory\n', 'the memory controller is enabled for child cgroups')
  t.equal(readFileSync(join(dir, `navigator-limited_one-${pid}`, 'memory.max'), 'utf8'), `${256 * 1024 ** 2}\n`)
  t.equal(readFileSync(join(dir, `navigator-limited_one-${pid}`, 'cgroup.procs'), 'utf8'), `${pid}\n`)
  t.notOk(lines.some((line) => String(line.msg).startsWith('memory_limit is not enforced')))
  t.match(lines.find((line) => line.msg === 'tenant memory limit set'), { process: 'limited/one', memoryMax: 256 * 1024 ** 2 })
})

test('memory_limit where the directory is not cgroup v2: one warning with the reason, at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-cgroup-'))
  const applications = await applicationsConfig({ memoryLimit: 256 * 1024 ** 2, tenants: [poolTenant('a'), poolTenant('b')] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger, cgroupDir: dir })
  t.teardown(() => supervisor.stop())
  await supervisor.start()
  t.match(lines.filter((line) => String(line.msg).startsWith('memory_limit is not enforced')), [{ msg: `memory_limit is not enforced: ${dir} is not a cgroup v2 directory (cgroup v1 or hybrid mount, or cgroups not mounted)` }], 'warned before any tenant starts')
  await pidOf(supervisor, 'a')
  await pidOf(supervisor, 'b')
  await supervisor.update({ ...applications })
  t.equal(lines.filter((line) => String(line.msg).startsWith('memory_limit is not enforced')).length, 1, 'once, whatever starts or reloads')
  t.notOk(existsSync(join(dir, 'navigator-a')))
})
