import net from 'node:net'
import type { ApplicationsConfig } from '@navigator/config'
import Fastify from 'fastify'
import { test } from 'tap'
import { processSupervisor, Supervisor, type ProcessSupervisorOptions, type ReadyEvent } from '../src/index.js'
import { applicationsConfig, freePort, getJson, nextEvent, pidExists, recordingLogger, standaloneConfig, tenantConfig } from './helpers.js'

/** True when 127.0.0.1:port accepts a TCP connection, false when it is refused. */
function accepts (port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve(false)
      else reject(err)
    })
  })
}

/** An eager tenant `web` and a standalone server `cable`, both started by Supervisor.start(). */
async function eagerApplications (): Promise<{ applications: ApplicationsConfig, cablePort: number }> {
  const cablePort = await freePort()
  const applications = await applicationsConfig({
    tenants: [tenantConfig('web', { start: 'eager' })],
    standaloneServers: [standaloneConfig('cable', cablePort)]
  })
  return { applications, cablePort }
}

/** Resolves with the tenant's port once both `web` and `cable` are ready. */
async function bothReady (supervisor: Supervisor): Promise<number> {
  const [web] = await Promise.all([
    nextEvent<ReadyEvent>(supervisor, 'ready', (event) => event.name === 'web'),
    nextEvent<ReadyEvent>(supervisor, 'ready', (event) => event.name === 'cable')
  ])
  return web.port
}

function pids (supervisor: Supervisor): number[] {
  return [supervisor.tenantStatus('web').pid as number, supervisor.standaloneStatus('cable').pid as number]
}

test('registered with options: eager tenants and standalone servers start on ready and stop on close', async (t) => {
  const { applications, cablePort } = await eagerApplications()
  const logLines: string[] = []
  const app = Fastify({ logger: { stream: { write: (line: string) => { logLines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(processSupervisor, { applications })
  const supervisor = app.processSupervisor
  t.teardown(() => supervisor.stop())
  t.type(supervisor, Supervisor, 'the app is decorated with the Supervisor the plugin created')
  t.equal(supervisor.tenantStatus('web').state, 'stopped', 'nothing is started at registration')

  const ready = bothReady(supervisor)
  await app.ready()
  t.not(supervisor.tenantStatus('web').state, 'stopped', 'the eager tenant is starting once the app is ready')
  t.type(supervisor.standaloneStatus('cable').pid, 'number', 'the standalone server is spawned once the app is ready')
  const webPort = await ready
  const [webPid, cablePid] = pids(supervisor)
  t.equal((await getJson(webPort, '/env')).pid, webPid, 'the tenant answers on its port')
  t.ok(await accepts(cablePort), 'the standalone server answers on its port')
  t.ok(logLines.some((line) => JSON.parse(line).process === 'web'), 'the supervisor logs through app.log by default')

  await app.close()
  t.same([pidExists(webPid), pidExists(cablePid)], [false, false], 'close() stopped both processes')
  t.same([await accepts(webPort), await accepts(cablePort)], [false, false], 'and their ports refuse connections')
  t.same([supervisor.tenantStatus('web').state, supervisor.standaloneStatus('cable').state], ['stopped', 'stopped'], 'both report stopped')
})

test('registered with an existing supervisor: the app only decorates; the owner starts and stops it, across apps', async (t) => {
  const { applications, cablePort } = await eagerApplications()
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const first = Fastify()
  t.teardown(() => first.close())
  await first.register(processSupervisor, { supervisor }).ready()
  t.equal(first.processSupervisor, supervisor, 'the app is decorated with the very supervisor it was given')
  t.equal(supervisor.tenantStatus('web').state, 'stopped', 'ready() does not start the eager tenant')
  t.equal(supervisor.standaloneStatus('cable').state, 'stopped', 'nor the standalone server')

  const ready = bothReady(supervisor)
  await supervisor.start()
  const webPort = await ready
  const [webPid, cablePid] = pids(supervisor)
  await first.close()
  t.same([pidExists(webPid), pidExists(cablePid)], [true, true], 'close() leaves the processes running')
  t.same([await accepts(webPort), await accepts(cablePort)], [true, true], 'and answering on their ports')

  // The server's configuration reload: a new app around the same supervisor reaches the same processes.
  const second = Fastify()
  t.teardown(() => second.close())
  await second.register(processSupervisor, { supervisor }).ready()
  t.equal(second.processSupervisor, supervisor, 'the second app is decorated with it too')
  t.same(await second.processSupervisor.ensureTenant('web'), { port: webPort }, 'and reaches the tenant the owner started')
  await second.close()
  t.same(pids(supervisor), [webPid, cablePid], 'the same processes after the second app closed too')
})

test('options that are neither an existing supervisor nor a new one\'s, or both, are refused at registration', async (t) => {
  const { applications } = await eagerApplications()
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const cases: Array<[string, unknown, RegExp]> = [
    ['neither', {}, /^Invalid option: pass either supervisor \(an existing Supervisor\) or applications \(to create one\)$/],
    ['both', { supervisor, applications }, /not both \(got supervisor and applications\)$/],
    ['supervisor with an option it would ignore', { supervisor, env: {} }, /not both \(got supervisor and env\)$/],
    ['a supervisor that is not one', { supervisor: { start () {} } }, /supervisor must be a Supervisor instance$/],
    ['a bad option of the new supervisor', { applications, stopGraceMs: -1 }, /stopGraceMs must be a non-negative number, got -1$/]
  ]
  for (const [name, options, message] of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(processSupervisor, options as ProcessSupervisorOptions) }, { code: 'NAV_SUPERVISOR_INVALID_OPTION', message }, name)
    t.notOk(app.hasDecorator('processSupervisor'), `${name}: nothing decorated`)
  }
  t.equal(supervisor.tenantStatus('web').state, 'stopped', 'a refused registration starts nothing')
})
