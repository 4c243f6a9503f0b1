import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { Supervisor } from '../src/index.js'
import { applicationsConfig, fixture, fixturesDir, getJson, nextEvent, pidExists, recordingLogger, tenantConfig } from './helpers.js'

test('a lazy tenant starts on its first ensureTenant with PORT and its substituted env, args and working directory', async (t) => {
  const applications = await applicationsConfig({
    env: { RAILS_ENV: 'production', GREETING: 'hello ${tenant_id}', LAYER: 'applications' },
    args: [fixture('app.mjs'), '--port=${PORT}', '--id=${tenant_id}'],
    tenants: [tenantConfig('tenant-a', {
      var: { tenant_id: 'tenant_a' },
      env: { DATABASE_URL: 'sqlite3:db/${tenant_id}.sqlite3', LAYER: 'tenant', FROM_NAVIGATOR: '${NAV_TEST_VALUE}' }
    })]
  })
  const env = { ...process.env, NAV_TEST_VALUE: 'from-navigator', LAYER: 'navigator', INHERITED: 'yes', PORT: '1' }
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger, env })
  t.teardown(() => supervisor.stop())
  const spawns: unknown[] = []
  supervisor.on('spawn', (event) => spawns.push(event))
  await supervisor.start()

  t.same(supervisor.tenantStatus('tenant-a'), { state: 'stopped', port: null, pid: null }, 'not started before its first request')
  t.equal(spawns.length, 0)

  const { port } = await supervisor.ensureTenant('tenant-a')
  t.ok(port >= applications.startPort, 'port from startPort upwards')
  const status = supervisor.tenantStatus('tenant-a')
  t.equal(status.state, 'ready')
  t.equal(status.port, port)
  t.match(spawns, [{ name: 'tenant-a', kind: 'tenant', pid: status.pid, port }])

  const seen = await getJson(port, '/env')
  t.equal(seen.pid, status.pid)
  t.equal(seen.cwd, fixture('').replace(/\/$/, ''))
  t.same(seen.argv, [`--port=${port}`, '--id=tenant_a'])
  t.equal(seen.env.PORT, String(port), 'PORT is the tenant port, last in the layering')
  t.equal(seen.env.RAILS_ENV, 'production')
  t.equal(seen.env.GREETING, 'hello tenant_a', 'applications.env resolves the tenant var')
  t.equal(seen.env.DATABASE_URL, 'sqlite3:db/tenant_a.sqlite3')
  t.equal(seen.env.LAYER, 'tenant', 'tenant env overrides applications env, which overrides Navigator env')
  t.equal(seen.env.FROM_NAVIGATOR, 'from-navigator', 'unknown names resolve from the environment')
  t.equal(seen.env.INHERITED, 'yes', 'Navigator environment is inherited')
})

test('concurrent ensureTenant calls share one process', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('shared')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  let spawns = 0
  supervisor.on('spawn', () => { spawns++ })
  const results = await Promise.all(Array.from({ length: 5 }, () => supervisor.ensureTenant('shared')))
  t.equal(spawns, 1)
  t.same(new Set(results.map((result) => result.port)).size, 1)
})

test('a tenant that takes 10 s to become ready does not delay another tenant', async (t) => {
  const applications = await applicationsConfig({
    startupTimeoutMs: 20_000,
    tenants: [tenantConfig('slow', { env: { READY_DELAY_MS: '10000' } }), tenantConfig('fast')]
  })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const slow = supervisor.ensureTenant('slow')
  await nextEvent(supervisor, 'spawn', (event) => event.name === 'slow')
  const begin = Date.now()
  await supervisor.ensureTenant('fast')
  // Waiting for the slow one would take 10 s; a cold start on a loaded machine may take a few seconds anyway.
  t.ok(Date.now() - begin < 8000, `fast tenant ready in ${Date.now() - begin} ms`)
  t.equal(supervisor.tenantStatus('slow').state, 'starting', 'the slow tenant is still starting')
  await slow
  t.equal(supervisor.tenantStatus('slow').state, 'ready')
})

test('a tenant not ready within startupTimeoutMs rejects with NAV_SUPERVISOR_STARTUP_TIMEOUT and is stopped', async (t) => {
  const applications = await applicationsConfig({
    startupTimeoutMs: 500,
    tenants: [tenantConfig('stuck', { args: [fixture('never-ready.mjs')] })]
  })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const spawned = nextEvent(supervisor, 'spawn')
  await t.rejects(supervisor.ensureTenant('stuck'), { code: 'NAV_SUPERVISOR_STARTUP_TIMEOUT', statusCode: 503 })
  const { pid } = await spawned
  t.same(supervisor.tenantStatus('stuck'), { state: 'stopped', port: null, pid: null })
  t.notOk(pidExists(pid), 'the process that never became ready is gone')
})

test('a tenant that exits during start-up rejects with NAV_SUPERVISOR_SPAWN_FAILED; one that cannot be spawned with NAV_SUPERVISOR_CANNOT_START', async (t) => {
  const applications = await applicationsConfig({
    tenants: [
      tenantConfig('crashes', { args: [fixture('crash.mjs')] }),
      tenantConfig('missing', { command: '/nonexistent/command' }),
      tenantConfig('gone-dir', { command: process.execPath, workingDir: '/nonexistent-folder' })
    ]
  })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())
  await t.rejects(supervisor.ensureTenant('crashes'), { code: 'NAV_SUPERVISOR_SPAWN_FAILED', statusCode: 503, message: /code 3/ })
  t.equal(supervisor.tenantStatus('crashes').state, 'stopped')
  await t.rejects(supervisor.ensureTenant('missing'), {
    code: 'NAV_SUPERVISOR_CANNOT_START',
    statusCode: 502,
    message: 'Process "missing" cannot start: the command /nonexistent/command was not found (in ' + fixturesDir + ', or on PATH)'
  })
  t.equal(supervisor.tenantStatus('missing').state, 'stopped')
  const logged = lines.filter((line) => line.process === 'missing')
  t.same(logged.map((line) => [line.level, line.msg, line.reason]), [
    ['error', 'tenant cannot start', `the command /nonexistent/command was not found (in ${fixturesDir}, or on PATH)`]
  ], 'one line, with the reason and no error object (no stack trace)')
  await t.rejects(supervisor.ensureTenant('gone-dir'), { code: 'NAV_SUPERVISOR_CANNOT_START', message: /its working directory \/nonexistent-folder does not exist/ })
})

test('a tenant killed with SIGKILL is restarted on the next ensureTenant', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('victim')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  await supervisor.ensureTenant('victim')
  const first = supervisor.tenantStatus('victim').pid as number
  const exited = nextEvent(supervisor, 'exit')
  process.kill(first, 'SIGKILL')
  t.match(await exited, { name: 'victim', signal: 'SIGKILL', expected: false })
  t.same(supervisor.tenantStatus('victim'), { state: 'stopped', port: null, pid: null })

  const { port } = await supervisor.ensureTenant('victim')
  const second = supervisor.tenantStatus('victim').pid
  t.not(second, first, 'a new process')
  t.equal((await getJson(port, '/env')).pid, second, 'and it answers')
})

test('an unused tenant is stopped after idleTimeoutMs', async (t) => {
  const applications = await applicationsConfig({ idleTimeoutMs: 200, tenants: [tenantConfig('sleepy')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const idle = nextEvent(supervisor, 'idle-stop')
  const exited = nextEvent(supervisor, 'exit')
  await supervisor.ensureTenant('sleepy')
  t.same(await idle, { name: 'sleepy' })
  t.match(await exited, { name: 'sleepy', expected: true })
  t.equal(supervisor.tenantStatus('sleepy').state, 'stopped')
  await supervisor.ensureTenant('sleepy')
  t.equal(supervisor.tenantStatus('sleepy').state, 'ready', 'starts again on the next request')
})

test('a tracked request or an open WebSocket keeps a tenant from idling', async (t) => {
  const applications = await applicationsConfig({ idleTimeoutMs: 150, tenants: [tenantConfig('busy')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  let idleStops = 0
  supervisor.on('idle-stop', () => { idleStops++ })

  const done = supervisor.trackRequest('busy')
  t.equal(supervisor.requestsInFlight('busy'), 1)
  await supervisor.ensureTenant('busy')
  await sleep(500)
  t.equal(idleStops, 0, 'not stopped while a request is in flight')
  t.equal(supervisor.tenantStatus('busy').state, 'ready')

  const close = supervisor.trackWebSocket('busy')
  done()
  done()
  t.equal(supervisor.requestsInFlight('busy'), 0, 'done() counts once however often it is called')
  t.equal(supervisor.requestsInFlight(), 0)
  t.equal(supervisor.openWebSockets('busy'), 1)
  t.equal(supervisor.openWebSockets(), 1)
  await sleep(500)
  t.equal(idleStops, 0, 'not stopped while a WebSocket is open')

  const idle = nextEvent(supervisor, 'idle-stop')
  close()
  t.equal(supervisor.openWebSockets('busy'), 0)
  t.same(await idle, { name: 'busy' })
})

test('an eager tenant starts with start(), before any request', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('eager', { start: 'eager' }), tenantConfig('lazy')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const ready = nextEvent(supervisor, 'ready')
  await supervisor.start()
  t.match(await ready, { name: 'eager' })
  t.equal(supervisor.tenantStatus('lazy').state, 'stopped')
})

test('ports in use and ports of other tenants and standalone servers are skipped', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('one'), tenantConfig('two')] })
  const occupied = net.createServer()
  await new Promise<void>((resolve) => occupied.listen(applications.startPort, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => occupied.close(resolve)))
  applications.standaloneServers = [{
    name: 'cable', matchPath: '/cable', command: process.execPath, args: [fixture('never-ready.mjs')], workingDir: process.cwd(), port: applications.startPort + 1, env: {}
  }]
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const [one, two] = await Promise.all([supervisor.ensureTenant('one'), supervisor.ensureTenant('two')])
  const reserved = [applications.startPort, applications.startPort + 1]
  t.notOk(reserved.includes(one.port), `one got ${one.port}`)
  t.notOk(reserved.includes(two.port), `two got ${two.port}`)
  t.not(one.port, two.port)
})

test('unknown names are refused with NAV_SUPERVISOR_UNKNOWN_TENANT (404)', async (t) => {
  const supervisor = new Supervisor({ applications: await applicationsConfig(), logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  await t.rejects(supervisor.ensureTenant('nobody'), { code: 'NAV_SUPERVISOR_UNKNOWN_TENANT', statusCode: 404 })
  t.throws(() => supervisor.tenantStatus('nobody'), { code: 'NAV_SUPERVISOR_UNKNOWN_TENANT' })
  t.throws(() => supervisor.standaloneStatus('nobody'), { code: 'NAV_SUPERVISOR_UNKNOWN_TENANT' })
  t.throws(() => supervisor.trackRequest('nobody'), { code: 'NAV_SUPERVISOR_UNKNOWN_TENANT' })
  const applications = await applicationsConfig()
  t.throws(() => new Supervisor({ applications, logger: null as any }), { code: 'NAV_SUPERVISOR_INVALID_OPTION' })
})

test('every output line of a tenant is logged with its name and emitted as an output event', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('chatty')] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())
  const stdout = nextEvent(supervisor, 'output', (event) => event.stream === 'stdout')
  const stderr = nextEvent(supervisor, 'output', (event) => event.stream === 'stderr')
  const { port } = await supervisor.ensureTenant('chatty')
  t.same(await stdout, { name: 'chatty', stream: 'stdout', line: `listening on ${port}` })
  t.same(await stderr, { name: 'chatty', stream: 'stderr', line: 'a line on stderr' })
  t.ok(lines.some((line) => line.level === 'info' && line.process === 'chatty' && line.msg === `listening on ${port}`))
  t.ok(lines.some((line) => line.level === 'warn' && line.process === 'chatty' && line.msg === 'a line on stderr'))
})

test('a ${name} found in neither var, PORT nor the environment refuses the start with NAV_SUPERVISOR_SPAWN_FAILED', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('typo', { env: { DATABASE_URL: '${NAV_SURELY_UNDEFINED}' } })] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger, env: {} })
  t.teardown(() => supervisor.stop())
  let spawns = 0
  supervisor.on('spawn', () => { spawns++ })
  await t.rejects(supervisor.ensureTenant('typo'), { code: 'NAV_SUPERVISOR_SPAWN_FAILED', message: /NAV_SURELY_UNDEFINED/ })
  t.equal(spawns, 0, 'nothing was spawned')
  t.equal(supervisor.tenantStatus('typo').state, 'stopped')
})
