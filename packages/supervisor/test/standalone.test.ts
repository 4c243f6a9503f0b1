import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { Supervisor } from '../src/index.js'
import { applicationsConfig, fixture, fixturesDir, freePort, nextEvent, recordingLogger, standaloneConfig } from './helpers.js'

function echo (port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end(text))
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { received += chunk })
    socket.once('end', () => resolve(received))
    socket.once('error', reject)
  })
}

function collect<T> (emitter: NodeJS.EventEmitter, name: string, count: number, timeoutMs: number): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const seen: T[] = []
    const listener = (payload: T): void => {
      seen.push(payload)
      if (seen.length < count) return
      clearTimeout(timer)
      emitter.removeListener(name, listener)
      resolve(seen)
    }
    const timer = setTimeout(() => {
      emitter.removeListener(name, listener)
      reject(new Error(`only ${seen.length} '${name}' events within ${timeoutMs} ms`))
    }, timeoutMs)
    emitter.on(name, listener)
  })
}

test('a standalone server starts at start() on its port, with PORT set, and runs once the port accepts connections', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ standaloneServers: [standaloneConfig('cable', port)] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  t.equal(supervisor.standaloneStatus('cable').state, 'stopped')
  const ready = nextEvent(supervisor, 'ready')
  const spawned = nextEvent(supervisor, 'spawn')
  await supervisor.start()
  t.match(await spawned, { name: 'cable', kind: 'standalone', port })
  t.same(await ready, { name: 'cable', port })
  const status = supervisor.standaloneStatus('cable')
  t.match(status, { state: 'running', port, restarts: 0 })
  t.type(status.pid, 'number')
  t.equal(await echo(port, 'ping'), 'ping')
})

test('a standalone server killed with SIGKILL is running again after the initial backoff delay', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ standaloneServers: [standaloneConfig('cable', port)] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const firstReady = nextEvent(supervisor, 'ready')
  await supervisor.start()
  await firstReady
  const firstPid = supervisor.standaloneStatus('cable').pid as number

  const exited = nextEvent(supervisor, 'exit')
  const restart = nextEvent(supervisor, 'restart')
  // The policy is the 100 ms delay below; the cold start of a Node child on a loaded machine may take seconds.
  const readyAgain = nextEvent(supervisor, 'ready', () => true, 10_000)
  const begin = Date.now()
  process.kill(firstPid, 'SIGKILL')
  t.match(await exited, { name: 'cable', signal: 'SIGKILL', expected: false })
  t.same(await restart, { name: 'cable', delayMs: 100 })
  await readyAgain
  t.ok(Date.now() - begin < 10_000, `running again after ${Date.now() - begin} ms`)
  const status = supervisor.standaloneStatus('cable')
  t.match(status, { state: 'running', restarts: 1 })
  t.not(status.pid, firstPid)
  t.equal(await echo(port, 'again'), 'again')
})

test('a standalone server that keeps crashing is restarted with a doubling backoff', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ standaloneServers: [standaloneConfig('flaky', port, { args: [fixture('crash.mjs')] })] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger })
  t.teardown(() => supervisor.stop())
  const restarts = collect<{ delayMs: number }>(supervisor, 'restart', 4, 10_000)
  await supervisor.start()
  t.same((await restarts).map((event) => event.delayMs), [100, 200, 400, 800])
  t.ok(supervisor.standaloneStatus('flaky').restarts >= 3)
})

test('the restart backoff stops doubling at its maximum', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ standaloneServers: [standaloneConfig('flaky', port, { args: [fixture('crash.mjs')] })] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger, restartBackoff: { initialMs: 10, maxMs: 40 } })
  t.teardown(() => supervisor.stop())
  const restarts = collect<{ delayMs: number }>(supervisor, 'restart', 5, 10_000)
  await supervisor.start()
  t.same((await restarts).map((event) => event.delayMs), [10, 20, 40, 40, 40])
})

test('the restart backoff starts again from its initial delay after the server stayed up resetAfterMs', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ standaloneServers: [standaloneConfig('cable', port)] })
  const supervisor = new Supervisor({ applications, logger: recordingLogger().logger, restartBackoff: { resetAfterMs: 3000 } })
  t.teardown(() => supervisor.stop())
  const killWhenReady = async (): Promise<number> => {
    const restart = nextEvent<{ delayMs: number }>(supervisor, 'restart')
    process.kill(supervisor.standaloneStatus('cable').pid as number, 'SIGKILL')
    return (await restart).delayMs
  }
  let ready = nextEvent(supervisor, 'ready')
  await supervisor.start()
  await ready
  ready = nextEvent(supervisor, 'ready')
  t.equal(await killWhenReady(), 100, 'first crash')
  await ready
  ready = nextEvent(supervisor, 'ready')
  t.equal(await killWhenReady(), 200, 'a crash soon after the restart doubles the delay')
  await ready
  await sleep(3500)
  t.equal(await killWhenReady(), 100, 'a crash after a healthy period starts from the initial delay again')
})

test('a standalone server whose command cannot be spawned is retried with backoff, not thrown', async (t) => {
  const port = await freePort()
  const applications = await applicationsConfig({ standaloneServers: [standaloneConfig('missing', port, { command: '/nonexistent/server' })] })
  const { logger, lines } = recordingLogger()
  const supervisor = new Supervisor({ applications, logger })
  t.teardown(() => supervisor.stop())
  const restarts = collect<{ delayMs: number }>(supervisor, 'restart', 2, 5000)
  await supervisor.start()
  t.same((await restarts).map((event) => event.delayMs), [100, 200])
  t.ok(lines.some((line) => line.level === 'error' && line.process === 'missing' && line.msg === 'standalone server cannot start'))
  t.equal(supervisor.standaloneStatus('missing').cannotStart, 'the command /nonexistent/server was not found (in ' + fixturesDir + ', or on PATH)', 'the status says why')
  await supervisor.stop()
  t.equal(supervisor.standaloneStatus('missing').state, 'stopped', 'stop() cancels the pending restart')
})
