import { test } from 'tap'
import type { ManagedProcessConfig } from '@navigator/config'
import { Supervisor } from '../src/index.js'
import { applicationsConfig, fixturesDir, recordingLogger, tenantConfig } from './helpers.js'

const FOREVER = 'setInterval(() => {}, 1000)'

function managedConfig (name: string, script: string, overrides: Partial<ManagedProcessConfig> = {}): ManagedProcessConfig {
  return { name, command: process.execPath, args: ['-e', script], workingDir: fixturesDir, env: {}, autoRestart: false, startDelayMs: 0, ...overrides }
}

test('managed processes start before start() resolves and stop after the tenants, in reverse order', async (t) => {
  const { logger } = recordingLogger()
  const applications = await applicationsConfig({ tenants: [tenantConfig('app', { start: 'eager' })] })
  const supervisor = new Supervisor({ applications, logger, managedProcesses: [managedConfig('redis', FOREVER), managedConfig('worker', FOREVER)] })
  t.teardown(async () => { await supervisor.stop() })
  await supervisor.start()
  t.equal(supervisor.managedStatus('redis').state, 'running')
  t.equal(supervisor.managedStatus('worker').state, 'running')
  await supervisor.ensureTenant('app')
  const order: string[] = []
  supervisor.on('exit', ({ name }) => { order.push(name) })
  supervisor.on('managed-exit', ({ name, expected }) => { if (expected === true) order.push(name) })
  await supervisor.stop()
  t.same(order, ['app', 'worker', 'redis'])
  t.equal(supervisor.managedStatus('redis').state, 'stopped')
})

test('an exit with status 0 is final even with autoRestart; a failure is restarted', async (t) => {
  const { logger } = recordingLogger()
  const supervisor = new Supervisor({
    applications: await applicationsConfig(),
    logger,
    restartBackoff: { initialMs: 10 },
    managedProcesses: [managedConfig('done', 'process.exit(0)', { autoRestart: true }), managedConfig('fails', 'process.exit(2)', { autoRestart: true })]
  })
  t.teardown(async () => { await supervisor.stop() })
  const restarted = new Promise((resolve) => { supervisor.on('managed-restart', ({ name }) => { if (name === 'fails') resolve(name) }) })
  const finished = new Promise((resolve) => { supervisor.on('managed-exit', ({ name }) => { if (name === 'done') resolve(name) }) })
  await supervisor.start()
  await Promise.all([restarted, finished])
  t.equal(supervisor.managedStatus('done').state, 'exited')
  t.throws(() => supervisor.managedStatus('nope'), { code: 'NAV_SUPERVISOR_UNKNOWN_TENANT' })
})

test('updateManagedProcesses keeps an unchanged process, restarts a changed one, stops a removed one, starts a new one', async (t) => {
  const { logger } = recordingLogger()
  const supervisor = new Supervisor({ applications: await applicationsConfig(), logger, managedProcesses: [managedConfig('keep', FOREVER), managedConfig('change', FOREVER), managedConfig('drop', FOREVER)] })
  t.teardown(async () => { await supervisor.stop() })
  await supervisor.start()
  const keep = supervisor.managedStatus('keep').pid
  const change = supervisor.managedStatus('change').pid
  await supervisor.updateManagedProcesses([
    managedConfig('keep', FOREVER, { autoRestart: true }),
    managedConfig('change', FOREVER, { env: { CHANGED: '1' } }),
    managedConfig('new', FOREVER)
  ])
  t.equal(supervisor.managedStatus('keep').pid, keep)
  t.not(supervisor.managedStatus('change').pid, change)
  t.equal(supervisor.managedStatus('change').state, 'running')
  t.equal(supervisor.managedStatus('new').state, 'running')
  t.throws(() => supervisor.managedStatus('drop'))
})
