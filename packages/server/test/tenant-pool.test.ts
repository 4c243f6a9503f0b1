import { execFileSync } from 'node:child_process'
import { request } from 'node:http'
import { join } from 'node:path'
import { test } from 'tap'
import WebSocket from 'ws'
import { FIXTURES, http, runCli, startSite, tempDir, tenant, writeConfig, type Running } from './helpers.js'

const WHOAMI = join(FIXTURES, 'whoami.mjs')

function pidRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = execFileSync('cat', [`/proc/${pid}/stat`], { encoding: 'latin1' })
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0])
  } catch {
    return false
  }
}

async function pidOf (nav: Running, path: string): Promise<number> {
  const answer = await http(nav.address, path)
  if (answer.status !== 200) throw new Error(`${path} answered ${answer.status}`)
  return (JSON.parse(answer.text) as { pid: number }).pid
}

async function openWebSocket (url: string): Promise<WebSocket> {
  const ws = new WebSocket(url)
  return await new Promise((resolve, reject) => {
    ws.once('open', () => { resolve(ws) })
    ws.once('error', reject)
  })
}

/** A request whose answer is held by the tenant for `ms`; abort() closes it from the client's side. */
function heldRequest (address: string, path: string): { abort: () => void, settled: Promise<void> } {
  const url = new URL(address)
  const req = request({ host: url.hostname, port: url.port, path, agent: false })
  const settled = new Promise<void>((resolve) => {
    req.once('response', (res) => { res.resume(); res.once('end', resolve); res.once('error', () => { resolve() }) })
    req.once('error', () => { resolve() })
    req.once('close', () => { resolve() })
  })
  req.end()
  return { abort: () => { req.destroy() }, settled }
}

function countLogs (nav: Running, msg: string): number {
  return nav.logs.filter((line) => line.msg === msg).length
}

test('max_size 2 with three tenants under traffic: the least recently used idle one makes room, busy ones never do', async (t) => {
  const nav = await startSite(t, {
    applications: ['  max_size: 2', '  startup_timeout: 3s'],
    tenants: [tenant('one', '/one'), tenant('two', '/two'), tenant('three', '/three')]
  })

  const one = await pidOf(nav, '/one/')
  const two = await pidOf(nav, '/two/')
  await pidOf(nav, '/one/')                 // one is used after two: two is the least recently used
  const three = await pidOf(nav, '/three/')
  t.notOk(pidRunning(two), 'two (least recently used, idle) was stopped')
  t.ok(pidRunning(one) && pidRunning(three), 'one and three run')
  const made = await nav.waitForLog((line) => line.msg === 'tenant stopped to make room (max_size 2)')
  t.match(made, { process: 'two', for: 'three', maxSize: 2 })

  // one busy with a slow request, three with an open WebSocket: a request for two finds no room.
  const slow = heldRequest(nav.address, '/one/slow?ms=60000')
  await nav.waitForLog((line) => line.msg === 'slow request started' && line.process === 'one')
  const ws = await openWebSocket(nav.address.replace('http', 'ws') + '/three/socket')
  t.teardown(() => { ws.terminate(); slow.abort() })

  const waitedFrom = Date.now()
  const refused = await http(nav.address, '/two/')
  t.equal(refused.status, 503, 'after the startup timeout the waiting request gets the maintenance page')
  t.ok(Date.now() - waitedFrom >= 2500, 'it waited for room first')
  t.ok(pidRunning(one), 'the tenant with a request in flight was not stopped')
  t.ok(pidRunning(three), 'the tenant with an open WebSocket was not stopped')
  t.equal(countLogs(nav, 'tenant stopped to make room (max_size 2)'), 1, 'nothing else was stopped')

  // The next request for two waits, and is served once the slow request ends.
  const waits = countLogs(nav, 'every running tenant is busy; waiting for one to become idle (max_size 2)')
  const served = http(nav.address, '/two/')
  await nav.waitForLog(() => countLogs(nav, 'every running tenant is busy; waiting for one to become idle (max_size 2)') > waits)
  slow.abort()
  const answer = await served
  t.equal(answer.status, 200, 'served once a tenant became idle')
  t.notOk(pidRunning(one), 'one, idle again, made room')
  t.ok(pidRunning(three), 'three (WebSocket still open) still runs')
  ws.send('still here')
  const echoed = await new Promise<string>((resolve) => { ws.once('message', (data: Buffer) => { resolve(data.toString()) }) })
  t.equal(echoed, 'still here', 'and its WebSocket still works')
})

test('track_websockets false: a tenant whose only activity is an open WebSocket makes room under max_size', async (t) => {
  const nav = await startSite(t, {
    applications: ['  max_size: 1', '  startup_timeout: 5s'],
    tenants: [tenant('chat', '/chat', 'track_websockets: false'), tenant('web', '/web')]
  })
  const chat = await pidOf(nav, '/chat/')
  const ws = await openWebSocket(nav.address.replace('http', 'ws') + '/chat/socket')
  t.teardown(() => { ws.terminate() })
  const closed = new Promise<void>((resolve) => { ws.once('close', () => { resolve() }) })
  t.equal((await http(nav.address, '/web/')).status, 200)
  t.notOk(pidRunning(chat), 'stopped despite its open WebSocket')
  await closed
  t.pass('the WebSocket was closed by the stop')
})

test('a tenant\'s own startup_timeout: its slow start gets the maintenance page after it, not after the applications\' one', async (t) => {
  const nav = await startSite(t, {
    applications: ['  startup_timeout: 60s'],
    tenants: [tenant('slow', '/slow', 'startup_timeout: 1s', 'env: { READY_DELAY_MS: "60000" }'), tenant('quick', '/quick')]
  })
  const began = Date.now()
  t.equal((await http(nav.address, '/slow/')).status, 503)
  t.ok(Date.now() - began < 30_000, 'well before the applications\' 60 s')
  const line = await nav.waitForLog((entry) => entry.msg === 'tenant not ready within the startup timeout; stopping it')
  t.match(line, { process: 'slow', timeoutMs: 1000 })
  t.equal((await http(nav.address, '/quick/')).status, 200)
})

test('a tenant\'s own health_check is the path it is probed on; the others keep applications.health_check', async (t) => {
  const nav = await startSite(t, {
    applications: ['  health_check: /up'],
    tenants: [
      tenant('own', '/own', `args: [${JSON.stringify(WHOAMI)}]`, 'health_check: /custom/ready'),
      tenant('shared', '/shared', `args: [${JSON.stringify(WHOAMI)}]`)
    ]
  })
  const own = JSON.parse((await http(nav.address, '/own/')).text) as { asked: string[] }
  t.ok(own.asked.length > 0 && own.asked.every((path) => path === '/custom/ready'), `probed on /custom/ready only: ${own.asked.join(', ')}`)
  const shared = JSON.parse((await http(nav.address, '/shared/')).text) as { asked: string[] }
  t.ok(shared.asked.length > 0 && shared.asked.every((path) => path === '/up'), `probed on /up: ${shared.asked.join(', ')}`)
})

test('port_env_var: the tenant gets its port in that variable and in PORT', async (t) => {
  const nav = await startSite(t, {
    applications: ['  port_env_var: SERVER_PORT'],
    tenants: [tenant('app', '/app', `args: [${JSON.stringify(WHOAMI)}]`)]
  })
  const seen = JSON.parse((await http(nav.address, '/app/')).text) as { env: { PORT: string, SERVER_PORT: string } }
  t.ok(Number(seen.env.PORT) > 0)
  t.equal(seen.env.SERVER_PORT, seen.env.PORT)
})

test('memory_limit through navigator: enforced where cgroup v2 can be written, else one warning at start and the tenant serves', async (t) => {
  const nav = await startSite(t, {
    applications: ['  memory_limit: 512M'],
    tenants: [tenant('a', '/a'), tenant('b', '/b', 'memory_limit: 1G')]
  })
  t.equal((await http(nav.address, '/a/')).status, 200)
  t.equal((await http(nav.address, '/b/')).status, 200)
  const set = nav.logs.filter((line) => line.msg === 'tenant memory limit set')
  const warnings = nav.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('memory_limit is not enforced: '))
  if (set.length > 0) {
    t.equal(warnings.length, 0)
    t.match(set, [{ process: 'a', memoryMax: 512 * 1024 ** 2 }, { process: 'b', memoryMax: 1024 ** 3 }])
  } else {
    t.equal(warnings.length, 1, 'one warning for both tenants')
    t.ok(nav.logs.indexOf(warnings[0]) < nav.logs.findIndex((line) => line.msg === 'listening'), 'at start, before Navigator listens')
  }
})

const root = process.getuid?.() === 0

test(`user: ${root ? 'as root the tenant runs as nobody; an unknown user is a config error' : 'without root it is a config error with its position'}`, async (t) => {
  if (root) {
    const nav = await startSite(t, {
      applications: ['  user: nobody'],
      // The fixture's folder: nobody cannot enter the private temporary folder of the config.
      tenants: [tenant('app', '/app', `args: [${JSON.stringify(WHOAMI)}]`, `working_dir: ${JSON.stringify(FIXTURES)}`)]
    })
    const seen = JSON.parse((await http(nav.address, '/app/')).text) as { uid: number, gid: number }
    t.equal(seen.uid, Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })))
    t.equal(seen.gid, Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })))
  }
  const dir = tempDir()
  writeConfig(dir, [
    'server:',
    '  listen: "127.0.0.1:0"',
    'applications:',
    '  command: node',
    '  tenants:',
    '    - name: app',
    '      path: /app',
    `      user: ${root ? 'no-such-user-navigator' : 'nobody'}`,
    ''
  ].join('\n'))
  // Line 9: writeConfig adds server.shutdown_timeout under `server:`.
  const expected = root
    ? /navigator\.yml:9:\d+: applications\.tenants\.0\.user: there is no user `no-such-user-navigator`/
    : /navigator\.yml:9:\d+: applications\.tenants\.0\.user: .*user\/group need Navigator to run as root; remove them or run as root/
  const checked = await runCli(['--check', join(dir, 'navigator.yml')])
  t.equal(checked.code, 2, '--check refuses it')
  t.match(checked.stderr, expected)
  const started = await runCli([join(dir, 'navigator.yml')])
  t.equal(started.code, 2, 'and so does a start')
  t.match(started.stderr, expected)
})
