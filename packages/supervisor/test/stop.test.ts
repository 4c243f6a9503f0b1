import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { test, type Test } from 'tap'
import { Supervisor } from '../src/index.js'
import { applicationsConfig, fixture, freePort, nextEvent, pidExists, pidRunning, recordingLogger, eventually, standaloneConfig, tenantConfig } from './helpers.js'

async function startLeader (t: Test, overrides: { env?: Record<string, string>, stopGraceMs?: number } = {}): Promise<{ supervisor: Supervisor, leader: number, grandchild: number }> {
  const applications = await applicationsConfig({
    args: [fixture('group-leader.mjs')],
    tenants: [tenantConfig('family', { env: overrides.env ?? {} })]
  })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger, stopGraceMs: overrides.stopGraceMs })
  t.teardown(() => supervisor.stop())
  const announced = nextEvent<{ line: string }>(supervisor, 'output', (event) => event.line.startsWith('grandchild '))
  await supervisor.ensureTenant('family')
  const grandchild = Number((await announced).line.split(' ')[1])
  const leader = supervisor.tenantStatus('family').pid as number
  return { supervisor, leader, grandchild }
}

test('stop() sends SIGTERM to the whole process group: the tenant and its grandchild are gone', async (t) => {
  const { supervisor, leader, grandchild } = await startLeader(t)
  t.ok(pidExists(leader) && pidExists(grandchild), 'both run before stop()')
  const exited = nextEvent(supervisor, 'exit')
  const begin = Date.now()
  await supervisor.stop()
  t.ok(Date.now() - begin < 2000, 'without waiting for the grace period')
  t.match(await exited, { name: 'family', code: 0, expected: true })
  t.notOk(pidExists(leader), 'leader gone (ESRCH)')
  t.notOk(pidExists(grandchild), 'grandchild gone (ESRCH)')
  t.same(supervisor.tenantStatus('family'), { state: 'stopped', port: null, pid: null })
})

test('a process group that ignores SIGTERM is killed with SIGKILL after stopGraceMs', async (t) => {
  const { supervisor, leader, grandchild } = await startLeader(t, { env: { IGNORE_TERM: '1' }, stopGraceMs: 300 })
  const exited = nextEvent(supervisor, 'exit')
  const begin = Date.now()
  await supervisor.stop()
  const elapsed = Date.now() - begin
  t.ok(elapsed >= 300, `waited the grace period (${elapsed} ms)`)
  t.ok(elapsed < 3000, 'and not much longer')
  t.match(await exited, { name: 'family', signal: 'SIGKILL', expected: true })
  t.notOk(pidExists(leader), 'leader gone (ESRCH)')
  t.ok(await eventually(() => !pidRunning(grandchild)), 'grandchild killed')
})

test('a tenant killed with SIGKILL does not leave its grandchild behind', async (t) => {
  const { supervisor, leader, grandchild } = await startLeader(t)
  const exited = nextEvent(supervisor, 'exit')
  process.kill(leader, 'SIGKILL')
  t.match(await exited, { expected: false })
  t.ok(await eventually(() => !pidRunning(grandchild)), 'the rest of the group is killed with the leader')
})

test('stop() stops standalone servers and tenants together, and ensureTenant afterwards is refused', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ tenants: [tenantConfig('app')], standaloneServers: [standaloneConfig('cable', port)] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const cableReady = nextEvent(supervisor, 'ready', (event) => event.name === 'cable')
  await supervisor.start()
  await Promise.all([cableReady, supervisor.ensureTenant('app')])
  const pids = [supervisor.tenantStatus('app').pid as number, supervisor.standaloneStatus('cable').pid as number]
  await supervisor.stop()
  t.same(pids.map(pidExists), [false, false])
  t.equal(supervisor.standaloneStatus('cable').state, 'stopped')
  await t.rejects(supervisor.ensureTenant('app'), { code: 'NAV_SUPERVISOR_STOPPED', statusCode: 503 })
})

test('stop() during start-up cancels the start: waiting callers are refused and nothing is left running', async (t) => {
  const applications = await applicationsConfig({ tenants: [tenantConfig('slow', { env: { READY_DELAY_MS: '3000' } })] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const spawned = nextEvent(supervisor, 'spawn')
  const waiting = supervisor.ensureTenant('slow')
  const { pid } = await spawned
  await supervisor.stop()
  await t.rejects(waiting, { code: 'NAV_SUPERVISOR_STOPPED' })
  t.notOk(pidExists(pid))
})

test('when Navigator exits without stop(), the exit safety net kills every process group it started', async (t) => {
  // Below the kernel's ephemeral range, as applicationsConfig picks it: no port a test asks the kernel for.
  const { startPort } = await applicationsConfig()
  const { stdout } = await promisify(execFile)(process.execPath, [fixture('navigator-exits.mjs'), String(startPort)], { timeout: 10_000 })
  const match = /grandchild (\d+) leader (\d+)/.exec(stdout)
  t.ok(match, `pids reported: ${stdout}`)
  const [grandchild, leader] = [Number(match?.[1]), Number(match?.[2])]
  t.ok(await eventually(() => !pidRunning(leader)), 'tenant killed')
  t.ok(await eventually(() => !pidRunning(grandchild)), 'its grandchild killed')
})
