import { join } from 'node:path'
import { test } from 'tap'
import { http, startFakeMachinesApi, startNavigator, tempDir, writeConfig } from './helpers.js'

test('server.idle: after the timeout without requests, Navigator asks the Machines API to suspend this Machine', async (t) => {
  const dir = tempDir({ 'public/hello.txt': 'hello\n' })
  const apiSocket = join(dir, 'api.sock')
  const { calls, firstCall } = await startFakeMachinesApi(t, apiSocket)

  writeConfig(dir, [
    'server:',
    '  listen: "127.0.0.1:0"',
    '  idle:',
    '    action: suspend',
    // The idle timer starts at listen, not at the first request: 3 s leaves room for a loaded machine between them.
    '    timeout: 3s',
    `    api_socket: ${JSON.stringify(apiSocket)}`,
    ''
  ].join('\n'))
  const nav = await startNavigator(t, dir, { FLY_MACHINE_ID: 'm1abc', FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' })
  const requestAt = Date.now()
  t.equal((await http(nav.address, '/hello.txt')).status, 200)
  await firstCall
  t.ok(Date.now() - requestAt >= 2950, 'not before the idle timeout')
  t.same(calls[0], { method: 'POST', url: '/v1/apps/navtest/machines/m1abc/suspend' })

  t.equal((await http(nav.address, '/hello.txt')).status, 200)
  await nav.waitForLog((line) => line.msg === 'machine resumed')
})
