import { join } from 'node:path'
import { test } from 'tap'
import { http, startFakeMachinesApi, startNavigator, tempDir, writeConfig } from './helpers.js'

// Fly polls the health check every 15 s while the Machine runs: counted as traffic, it would keep the Machine from
// ever idling. Here it is polled every 100 ms against a 3 s idle timeout (the idle timer starts at listen, before the
// first poll: a longer window leaves room for the at least 5 polls counted below on a loaded machine).

test('health checks every 100 ms do not keep the Machine awake: the suspend POST is made, and they log no resume', async (t) => {
  const dir = tempDir({ 'public/hello.txt': 'hello\n' })
  const apiSocket = join(dir, 'api.sock')
  const { calls, firstCall } = await startFakeMachinesApi(t, apiSocket)

  writeConfig(dir, [
    'server:',
    '  listen: "127.0.0.1:0"',
    '  health_check: /up',
    '  idle:',
    '    action: suspend',
    '    timeout: 3s',
    `    api_socket: ${JSON.stringify(apiSocket)}`,
    ''
  ].join('\n'))
  const nav = await startNavigator(t, dir, { FLY_MACHINE_ID: 'm1abc', FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' })

  let polling = true
  let polls = 0
  const statuses = new Set<number>()
  const poller = (async () => {
    while (polling) {
      statuses.add((await http(nav.address, polls % 2 === 0 ? '/up' : '/up?probe=1')).status)
      polls++
      await new Promise((resolve) => setTimeout(resolve, 100)) // the polling interval under test, not a synchronisation
    }
  })()
  t.teardown(async () => { polling = false; await poller })

  let bound: NodeJS.Timeout | undefined
  // Bound the wait; the assertions below then fail.
  await Promise.race([firstCall, new Promise((resolve) => { bound = setTimeout(resolve, 10_000) })])
  clearTimeout(bound)
  t.same(calls[0], { method: 'POST', url: '/v1/apps/navtest/machines/m1abc/suspend' }, 'suspended despite the health checks')
  t.ok(polls >= 5, `${polls} health checks were answered during the idle period`)
  t.same([...statuses], [200], 'every health check answered 200')

  await nav.waitForLog((line) => line.msg === 'machine suspend accepted')
  const pollsAfter = polls
  const deadline = Date.now() + 5_000
  while (polls < pollsAfter + 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50)) // the poller's own pace
  t.ok(polls >= pollsAfter + 3, 'three health checks answered after the accepted suspend')
  t.notOk(nav.logs.some((line) => line.msg === 'machine resumed'), 'health checks after the suspend are no resume')

  polling = false
  await poller
  t.equal((await http(nav.address, '/hello.txt')).status, 200)
  await nav.waitForLog((line) => line.msg === 'machine resumed')
})
