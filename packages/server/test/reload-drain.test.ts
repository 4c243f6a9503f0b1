import { test } from 'tap'
import WebSocket from 'ws'
import { freePort, http, startNavigator, TENANT_APP, tempDir, writeConfig } from './helpers.js'

function siteYaml (startPort: number, greeting: string): string {
  return [
    'server:',
    '  listen: "127.0.0.1:0"',
    '  shutdown_timeout: 10s',
    'applications:',
    '  command: node',
    `  args: [${JSON.stringify(TENANT_APP)}]`,
    `  start_port: ${startPort}`,
    '  tenants:',
    '    - name: app',
    '      path: /app',
    '      env:',
    `        TENANT_GREETING: ${JSON.stringify(greeting)}`,
    ''
  ].join('\n')
}

interface View { pid: number, env: { TENANT_GREETING?: string } }

function processGone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

test('SIGHUP after a tenant env change lets a slow request finish on the old process, sends the next request to the new one, then stops the old one', async (t) => {
  const startPort = await freePort()
  const dir = tempDir({ 'navigator.yml': siteYaml(startPort, 'one') })
  const nav = await startNavigator(t, dir)
  const before = JSON.parse((await http(nav.address, '/app/')).text) as View
  t.equal(before.env.TENANT_GREETING, 'one')

  const slow = http(nav.address, '/app/slow?ms=3000')
  await nav.waitForLog((line) => line.msg === 'slow request started')
  writeConfig(dir, siteYaml(startPort, 'two'))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')

  const after = JSON.parse((await http(nav.address, '/app/')).text) as View
  t.equal(after.env.TENANT_GREETING, 'two', 'the next request sees the new env')
  t.not(after.pid, before.pid, 'and is answered by a new process')
  t.notOk(processGone(before.pid), 'the old process still runs while its request is in flight')

  const answer = await slow
  t.equal(answer.status, 200, 'the slow request completes')
  t.equal(answer.text, 'slow done\n')
  const deadline = Date.now() + 8000
  while (!processGone(before.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(processGone(before.pid), 'the old process is gone afterwards')
  t.equal(JSON.parse((await http(nav.address, '/app/')).text).pid, after.pid, 'the new process keeps serving')
})

test('SIGHUP after a tenant env change keeps an open WebSocket to the old process working', async (t) => {
  const startPort = await freePort()
  const dir = tempDir({ 'navigator.yml': siteYaml(startPort, 'one') })
  const nav = await startNavigator(t, dir)
  const ws = new WebSocket(nav.address.replace(/^http/, 'ws') + '/app/cable')
  t.teardown(() => { ws.terminate() })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const echo = async (text: string): Promise<string> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('no echo within 5 s')) }, 5000)
    ws.once('message', (data) => { clearTimeout(timer); resolve(String(data)) })
    ws.send(text)
  })
  t.equal(await echo('before'), 'before')

  writeConfig(dir, siteYaml(startPort, 'two'))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')
  const after = JSON.parse((await http(nav.address, '/app/')).text) as View
  t.equal(after.env.TENANT_GREETING, 'two', 'new requests reach the new process')
  t.equal(await echo('after'), 'after', 'the WebSocket opened before the reload still works')
  t.equal(ws.readyState, WebSocket.OPEN)
})
