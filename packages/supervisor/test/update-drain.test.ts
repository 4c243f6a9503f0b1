import { test } from 'tap'
import { Supervisor } from '../src/index.js'
import { applicationsConfig, eventually, freePort, getJson, nextEvent, pidExists, recordingLogger, standaloneConfig, tenantConfig } from './helpers.js'

test('a changed tenant with a request in flight keeps running until the request is done while new requests reach a fresh instance', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('app', { env: { VERSION: 'one' } })] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const { port: oldPort } = await supervisor.ensureTenant('app')
  const oldPid = supervisor.tenantStatus('app').pid as number
  const release = supervisor.trackRequest('app')

  let settled = false
  const updated = supervisor.update({ ...applications, tenants: [tenantConfig('app', { env: { VERSION: 'two' } })] }, { drainMs: 20_000 })
  void updated.then(() => { settled = true })

  const { port: newPort } = await supervisor.ensureTenant('app')
  t.not(newPort, oldPort, 'the fresh instance listens on another port')
  t.equal((await getJson(newPort, '/env')).env.VERSION, 'two', 'new requests see the new configuration')
  t.equal((await getJson(oldPort, '/env')).env.VERSION, 'one', 'the old instance still answers its in-flight request')
  t.ok(pidExists(oldPid), 'the old process group is not stopped while a request is in flight')
  t.notOk(settled, 'update() has not settled while the old instance drains')

  release()
  await updated
  t.notOk(pidExists(oldPid), 'the old process group is stopped once its last request is done')
  t.equal(supervisor.tenantStatus('app').port, newPort, 'the fresh instance keeps serving')
})

test('a replaced tenant with an open WebSocket is stopped after the drain limit', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('app', { env: { VERSION: 'one' } })] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())
  await supervisor.ensureTenant('app')
  const oldPid = supervisor.tenantStatus('app').pid as number
  supervisor.trackWebSocket('app')
  const started = Date.now()
  await supervisor.update({ ...applications, tenants: [tenantConfig('app', { env: { VERSION: 'two' } })] }, { drainMs: 200 })
  t.ok(Date.now() - started >= 190, 'the WebSocket was waited for up to the drain limit')
  t.notOk(pidExists(oldPid), 'then the old process group is stopped')
  t.ok(lines.some((line) => line.level === 'warn' && line.drainMs === 200), 'the cut is logged')
})

test('a removed tenant finishes its in-flight request before it is stopped', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('gone')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const { port } = await supervisor.ensureTenant('gone')
  const pid = supervisor.tenantStatus('gone').pid as number
  const release = supervisor.trackRequest('gone')
  const updated = supervisor.update({ ...applications, tenants: [] }, { drainMs: 20_000 })
  await t.rejects(supervisor.ensureTenant('gone'), { code: 'NAV_SUPERVISOR_UNKNOWN_TENANT' }, 'new requests no longer find it')
  t.equal((await getJson(port, '/env')).pid, pid, 'the in-flight request is still answered')
  release()
  await updated
  t.notOk(pidExists(pid), 'stopped once the request is done')
})

test('a caller waiting for a tenant to start when a reload replaces it gets the new instance', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('app', { env: { VERSION: 'one', READY_DELAY_MS: '300' } })] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const waiting = supervisor.ensureTenant('app')
  await nextEvent(supervisor, 'spawn')
  const updated = supervisor.update({ ...applications, tenants: [tenantConfig('app', { env: { VERSION: 'two' } })] }, { drainMs: 20_000 })
  const { port } = await waiting
  t.equal((await getJson(port, '/env')).env.VERSION, 'two', 'the waiting caller is answered by the new instance')
  await updated
})

test('a changed standalone server is restarted only after its in-flight requests are done', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ standaloneServers: [standaloneConfig('cable', port)] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const ready = nextEvent(supervisor, 'ready')
  await supervisor.start()
  await ready
  const before = supervisor.standaloneStatus('cable').pid as number
  const release = supervisor.trackRequest('cable')
  const readyAgain = nextEvent(supervisor, 'ready', () => true, 10_000)
  const updated = supervisor.update({ ...applications, standaloneServers: [standaloneConfig('cable', port, { env: { CHANGED: '1' } })] }, { drainMs: 20_000 })
  t.notOk(await eventually(() => !pidExists(before), 300), 'the server keeps running while a request is in flight')
  release()
  await updated
  await readyAgain
  t.notOk(pidExists(before), 'then it is stopped')
  t.not(supervisor.standaloneStatus('cable').pid, before, 'and started again')
  t.equal(supervisor.standaloneStatus('cable').state, 'running')
})

test('update() refuses a bad drain limit at once and applies nothing', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('app')] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  t.throws(() => supervisor.update({ ...applications, tenants: [] }, { drainMs: -1 }), { code: 'NAV_SUPERVISOR_INVALID_OPTION' })
  t.equal(supervisor.tenantStatus('app').state, 'stopped', 'the tenant is still known')
})
