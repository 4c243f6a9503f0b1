import { test } from 'tap'
import { Supervisor } from '../src/index.js'
import { applicationsConfig, freePort, getJson, nextEvent, pidExists, recordingLogger, standaloneConfig, tenantConfig } from './helpers.js'

test('update() keeps unchanged processes running, restarts changed ones, stops removed ones and starts new ones', async (t) => {
  const [cablePort, chatPort] = [await freePort(), await freePort()]
  const applications = await applicationsConfig({
    tenants: [tenantConfig('same'), tenantConfig('changed', { env: { VERSION: 'one' } }), tenantConfig('removed')],
    standaloneServers: [standaloneConfig('cable', cablePort)]
  })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const cableReady = nextEvent(supervisor, 'ready', (event) => event.name === 'cable')
  await supervisor.start()
  await Promise.all([cableReady, supervisor.ensureTenant('same'), supervisor.ensureTenant('changed'), supervisor.ensureTenant('removed')])
  const before = {
    same: supervisor.tenantStatus('same').pid,
    changed: supervisor.tenantStatus('changed').pid as number,
    removed: supervisor.tenantStatus('removed').pid as number,
    cable: supervisor.standaloneStatus('cable').pid
  }

  const next = {
    ...applications,
    idleTimeoutMs: 60_000,
    tenants: [tenantConfig('same'), tenantConfig('changed', { env: { VERSION: 'two' } }), tenantConfig('added', { start: 'eager' })],
    standaloneServers: [standaloneConfig('cable', cablePort), standaloneConfig('chat', chatPort)]
  }
  const addedReady = nextEvent(supervisor, 'ready', (event) => event.name === 'added')
  const chatReady = nextEvent(supervisor, 'ready', (event) => event.name === 'chat')
  await supervisor.update(next)

  t.equal(supervisor.tenantStatus('same').pid, before.same, 'an unchanged tenant keeps its process')
  t.equal(supervisor.standaloneStatus('cable').pid, before.cable, 'an unchanged standalone server keeps its process')
  t.notOk(pidExists(before.changed), 'a changed tenant is stopped')
  t.notOk(pidExists(before.removed), 'a removed tenant is stopped')
  await t.rejects(supervisor.ensureTenant('removed'), { code: 'NAV_SUPERVISOR_UNKNOWN_TENANT' })
  const { port } = await supervisor.ensureTenant('changed')
  t.equal((await getJson(port, '/env')).env.VERSION, 'two', 'and starts again with its new configuration')
  await Promise.all([addedReady, chatReady])
  t.equal(supervisor.tenantStatus('added').state, 'ready', 'a new eager tenant is started')
  t.equal(supervisor.standaloneStatus('chat').state, 'running', 'a new standalone server is started')
})

test('update() restarts a standalone server whose command changed', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ standaloneServers: [standaloneConfig('cable', port)] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const ready = nextEvent(supervisor, 'ready')
  await supervisor.start()
  await ready
  const before = supervisor.standaloneStatus('cable').pid as number
  const readyAgain = nextEvent(supervisor, 'ready')
  await supervisor.update({ ...applications, standaloneServers: [standaloneConfig('cable', port, { env: { CHANGED: '1' } })] })
  await readyAgain
  t.notOk(pidExists(before))
  t.not(supervisor.standaloneStatus('cable').pid, before)
  t.equal(supervisor.standaloneStatus('cable').state, 'running')
})
