import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type Test } from 'tap'
import { MachineIdle } from '../src/index.js'
import { nextEvent, recordingLogger } from './helpers.js'

interface Call { method: string, url: string }

/** A fake Machines API on a real Unix socket in a temporary folder; records every call. */
async function fakeMachinesApi (t: Test, status = 200): Promise<{ socketPath: string, calls: Call[], server: http.Server }> {
  const dir = await mkdtemp(join(tmpdir(), 'nav-machines-api-'))
  const socketPath = join(dir, 'api.sock')
  const calls: Call[] = []
  const server = http.createServer((request, response) => {
    calls.push({ method: request.method ?? '', url: request.url ?? '' })
    server.emit('call', calls[calls.length - 1])
    response.statusCode = status
    response.end(status === 200 ? '{"ok":true}' : '{"error":"nope"}')
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  t.teardown(async () => {
    await new Promise((resolve) => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })
  return { socketPath, calls, server }
}

function machineIdle (t: Test, options: { apiSocket: string, action?: 'suspend' | 'stop', timeoutMs?: number }): { idle: MachineIdle, lines: ReturnType<typeof recordingLogger>['lines'] } {
  const { logger, lines } = recordingLogger()
  const idle = new MachineIdle({ action: options.action ?? 'suspend', timeoutMs: options.timeoutMs ?? 100, apiSocket: options.apiSocket, appName: 'my-app', machineId: 'd8d9e6e2c01238', logger })
  t.teardown(() => idle.stop())
  return { idle, lines }
}

test('after the idle timeout it POSTs suspend for this Machine to the Machines API over the Unix socket', async (t) => {
  const api = await fakeMachinesApi(t)
  const { idle } = machineIdle(t, { apiSocket: api.socketPath })
  const call = nextEvent<Call>(api.server, 'call')
  const idled = nextEvent(idle, 'idle')
  const begin = Date.now()
  idle.start()
  t.same(await call, { method: 'POST', url: '/v1/apps/my-app/machines/d8d9e6e2c01238/suspend' })
  t.ok(Date.now() - begin >= 90, 'not before the timeout')
  t.same(await idled, { action: 'suspend' })
})

test('the stop action POSTs to .../stop', async (t) => {
  const api = await fakeMachinesApi(t)
  const { idle } = machineIdle(t, { apiSocket: api.socketPath, action: 'stop' })
  const call = nextEvent<Call>(api.server, 'call')
  idle.start()
  t.same(await call, { method: 'POST', url: '/v1/apps/my-app/machines/d8d9e6e2c01238/stop' })
})

test('no call while a request is in flight or a WebSocket is open', async (t) => {
  const api = await fakeMachinesApi(t)
  const { idle } = machineIdle(t, { apiSocket: api.socketPath })
  idle.start()
  idle.requestStarted()
  await sleep(350)
  t.equal(api.calls.length, 0, 'not while a request is in flight')
  idle.webSocketOpened()
  idle.requestFinished()
  await sleep(350)
  t.equal(api.calls.length, 0, 'not while a WebSocket is open')
  const call = nextEvent<Call>(api.server, 'call')
  idle.webSocketClosed()
  t.match(await call, { method: 'POST', url: /\/suspend$/ })
  t.equal(api.calls.length, 1)
})

test('activity after a suspend logs "machine resumed" and emits resumed', async (t) => {
  const api = await fakeMachinesApi(t)
  const { idle, lines } = machineIdle(t, { apiSocket: api.socketPath })
  const accepted = nextEvent(idle, 'accepted')
  idle.start()
  t.same(await accepted, { action: 'suspend', status: 200 })
  const resumed = nextEvent(idle, 'resumed')
  idle.requestStarted()
  await resumed
  t.ok(lines.some((line) => line.level === 'info' && line.msg === 'machine resumed'))
  const again = nextEvent(api.server, 'call')
  idle.requestFinished()
  await again
  t.equal(api.calls.length, 2, 'idles again after the next quiet period')
})

/** A fake Machines API that answers each call only when the test says so, with the status it gives. */
async function heldMachinesApi (t: Test): Promise<{ socketPath: string, server: http.Server, answer: (status: number) => void }> {
  const dir = await mkdtemp(join(tmpdir(), 'nav-machines-api-'))
  const socketPath = join(dir, 'api.sock')
  const waiting: http.ServerResponse[] = []
  const server = http.createServer((request, response) => {
    request.resume()
    waiting.push(response)
    server.emit('call')
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  t.teardown(async () => {
    for (const response of waiting) response.destroy()
    await new Promise((resolve) => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })
  return {
    socketPath,
    server,
    answer (status) {
      const response = waiting.shift()
      if (response === undefined) throw new Error('no call is waiting')
      response.statusCode = status
      response.end('{}')
    }
  }
}

test('a request arriving while the suspend call is under way is no resume; the first one after the accepted call is', async (t) => {
  const api = await heldMachinesApi(t)
  const { idle, lines } = machineIdle(t, { apiSocket: api.socketPath })
  const resumes: unknown[] = []
  idle.on('resumed', () => resumes.push(true))
  const call = nextEvent(api.server, 'call')
  idle.start()
  await call
  idle.requestStarted()
  idle.requestFinished()
  const accepted = nextEvent(idle, 'accepted')
  api.answer(200)
  await accepted
  t.equal(resumes.length, 0, 'no resumed event for the request during the call')
  t.notOk(lines.some((line) => line.msg === 'machine resumed'), 'no "machine resumed" line for it')
  const resumed = nextEvent(idle, 'resumed')
  idle.requestStarted()
  await resumed
  t.equal(lines.filter((line) => line.msg === 'machine resumed').length, 1, 'logged once, after the accepted call')
  idle.requestFinished()
})

test('a request during a suspend call that then fails is no resume, and idleness is counted again after it', async (t) => {
  const api = await heldMachinesApi(t)
  const { idle, lines } = machineIdle(t, { apiSocket: api.socketPath })
  let resumes = 0
  idle.on('resumed', () => { resumes++ })
  const call = nextEvent(api.server, 'call')
  idle.start()
  await call
  idle.requestStarted()
  const again = nextEvent(api.server, 'call')
  api.answer(503)
  idle.requestFinished()
  await again
  t.ok(lines.some((line) => line.level === 'error' && line.status === 503), 'the refusal was logged before asking again')
  t.equal(resumes, 0, 'never reported as resumed')
  t.notOk(lines.some((line) => line.msg === 'machine resumed'))
  api.answer(200)
})

test('a refused or unreachable Machines API is logged at error and idleness is counted again', async (t) => {
  const api = await fakeMachinesApi(t, 500)
  const { idle, lines } = machineIdle(t, { apiSocket: api.socketPath })
  const calls = new Promise<void>((resolve) => api.server.on('call', () => { if (api.calls.length === 2) resolve() }))
  idle.start()
  await calls
  t.ok(lines.some((line) => line.level === 'error' && line.status === 500), 'refusal logged with the status')

  const { idle: unreachable, lines: unreachableLines } = machineIdle(t, { apiSocket: join(tmpdir(), 'no-such-dir-nav', 'api.sock') })
  const idled = nextEvent(unreachable, 'idle')
  unreachable.start()
  await idled
  await nextEvent(unreachable, 'idle', () => true, 2000)
  t.ok(unreachableLines.some((line) => line.level === 'error' && /unreachable/.test(line.msg ?? '')), 'unreachable API logged')
})

test('stop() disarms the timer and invalid options are refused with NAV_SUPERVISOR_INVALID_OPTION', async (t) => {
  const api = await fakeMachinesApi(t)
  const { idle } = machineIdle(t, { apiSocket: api.socketPath })
  idle.start()
  idle.stop()
  await sleep(300)
  t.equal(api.calls.length, 0)
  const { logger } = recordingLogger()
  const base = { action: 'suspend' as const, timeoutMs: 1000, apiSocket: api.socketPath, appName: 'a', machineId: 'm', logger }
  t.throws(() => new MachineIdle({ ...base, action: 'sleep' as any }), { code: 'NAV_SUPERVISOR_INVALID_OPTION', message: /action/ })
  t.throws(() => new MachineIdle({ ...base, timeoutMs: 0 }), { code: 'NAV_SUPERVISOR_INVALID_OPTION', message: /timeoutMs/ })
  t.throws(() => new MachineIdle({ ...base, machineId: '' }), { code: 'NAV_SUPERVISOR_INVALID_OPTION', message: /machineId/ })
})
