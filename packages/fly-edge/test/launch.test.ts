import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { FlyEdge } from '../src/edge.js'
import { launchMachines } from '../src/launch.js'
import { machineConfigText, PORTS_PER_MACHINE } from '../src/machine-config.js'
import { request } from './fixtures.js'

const config = fileURLToPath(new URL('./fixtures/navigator.yml', import.meta.url))
const navigator = fileURLToPath(new URL('./fixtures/fake-navigator.mjs', import.meta.url))

interface FakeReply { machine: string, app: string, region: string, extra: string, data: string, pid: number, configText: string }

test('the per-Machine config fills in its ports and adds peers under sticky_sessions at the right indent', async (t) => {
  const text = machineConfigText('server:\n  listen: ${NAVIGATOR_PORT}\nroutes:\n  fly:\n    sticky_sessions:\n      enabled: true\nx: ${NAVIGATOR_PORT+3}\n',
    4100, { a: 'http://127.0.0.1:4100' })
  t.equal(text, 'server:\n  listen: 4100\nroutes:\n  fly:\n    sticky_sessions:\n      peers: {"a":"http://127.0.0.1:4100"}\n      enabled: true\nx: 4103\n')
})

test('with direct_proxy: flycast in the sticky_sessions block, the per-Machine config also gets flycast_url', async (t) => {
  const base = 'routes:\n  fly:\n    sticky_sessions:\n      enabled: true\n      direct_proxy: flycast  # through the proxy\n' +
    'applications:\n  start_port: ${NAVIGATOR_PORT+2}\n'
  t.equal(machineConfigText(base, 4100, { a: 'http://127.0.0.1:4130' }, { flycastUrl: 'http://127.0.0.1:4132' }),
    'routes:\n  fly:\n    sticky_sessions:\n      peers: {"a":"http://127.0.0.1:4130"}\n      flycast_url: "http://127.0.0.1:4132"\n' +
    '      enabled: true\n      direct_proxy: flycast  # through the proxy\napplications:\n  start_port: 4102\nserver:\n  listen: 4100\n')
  const vm = machineConfigText(base.replace('flycast  #', 'vm  #'), 4100, {}, { flycastUrl: 'http://127.0.0.1:4132' })
  t.notMatch(vm, /flycast_url/, 'not with direct_proxy: vm')
  const own = machineConfigText(base.replace('enabled: true', 'flycast_url: http://elsewhere:1'), 4100, {}, { flycastUrl: 'http://127.0.0.1:4132' })
  t.equal(own.match(/flycast_url/g)?.length, 1, 'a flycast_url of the base config is kept, not doubled')
  const outside = 'routes:\n  fly:\n    sticky_sessions:\n      enabled: true\nother:\n  direct_proxy: flycast\n'
  t.notMatch(machineConfigText(outside, 4100, {}, { flycastUrl: 'http://x:1' }), /flycast_url/, 'only the sticky_sessions block counts')
})

test('launched Machines each get their own id, app, region, port block, env, data folder and peers; stop removes everything', async (t) => {
  const launched = await launchMachines({
    config, count: 3, app: 'demo', regions: ['iad', 'ams'], navigator, env: { EXTRA: 'yes' }
  })
  t.teardown(() => launched.stop())
  t.equal(launched.machines.length, 3)
  t.same(launched.machines.map((m) => m.region), ['iad', 'ams', 'iad'])
  const ports = launched.machines.map((m) => Number(new URL(m.url).port))
  t.equal(ports[1] - ports[0], PORTS_PER_MACHINE)
  const replies: FakeReply[] = []
  for (const machine of launched.machines) {
    const reply = (await request(machine.url)).json<FakeReply>()
    replies.push(reply)
    t.equal(reply.machine, machine.id)
    t.match(machine.id, /^[0-9a-f]{14}$/)
    t.equal(reply.app, 'demo')
    t.equal(reply.region, machine.region)
    t.equal(reply.extra, 'yes')
    t.equal(reply.data, launched.dataDirs[machine.id], 'NAVIGATOR_DATA is the Machine\'s data folder')
    t.ok(existsSync(reply.data), 'the data folder exists')
    t.match(reply.configText, `listen: "127.0.0.1:${new URL(machine.url).port}"`)
    t.match(reply.configText, `start_port: ${Number(new URL(machine.url).port) + 2}`)
    // Peers are the Machines' private addresses on the edge, never their own ports.
    t.match(reply.configText, `        peers: ${JSON.stringify(Object.fromEntries(launched.machines.map((m) => [m.id, `http://127.0.0.1:${m.privatePort as number}`])))}`)
    t.notMatch(reply.configText, /flycast_url/, 'the fixture does not ask for the Flycast direct proxy')
  }
  const last = Number(new URL(launched.machines[2].url).port) + PORTS_PER_MACHINE
  t.same(launched.machines.map((m) => m.privatePort), [last, last + 1, last + 2], 'private address ports follow the Machines\' blocks')
  t.same(launched.flycastPorts, { demo: last + 3 })
  t.equal(launched.flycastUrl, `http://127.0.0.1:${last + 3}`)
  const files = Object.values(launched.configFiles)
  t.ok(files.every((f) => existsSync(f)))
  await launched.stop()
  t.ok(files.every((f) => !existsSync(f)), 'the generated configs are removed')
  t.equal(new Set(Object.values(launched.dataDirs)).size, 3, 'one data folder per Machine')
  t.ok(Object.values(launched.dataDirs).every((dir) => !existsSync(dir)), 'the temporary data folders are removed')
  for (const reply of replies) t.throws(() => process.kill(reply.pid, 0), 'the process is gone')
})

test('the edge stops, starts, suspends and resumes launched Machines', async (t) => {
  const launched = await launchMachines({ config, count: 2, app: 'demo', navigator, ids: ['one', 'two'] })
  t.teardown(() => launched.stop())
  const edge = new FlyEdge({ app: 'demo', machines: launched.machines, launcher: launched.launcher, flycastPorts: launched.flycastPorts })
  await edge.listen()
  t.teardown(() => edge.close())
  t.equal(edge.flycastUrl(), launched.flycastUrl, 'the edge\'s Flycast address is the one the configs name')
  const before = (await request(launched.machines[0].url)).json<FakeReply>().pid
  await edge.stopMachine('one')
  t.throws(() => process.kill(before, 0), 'stopping a Machine ends its process')
  for (let i = 0; i < 3; i++) t.equal((await request(edge.url)).json<FakeReply>().machine, 'two')
  await edge.startMachine('one')
  const after = (await request(launched.machines[0].url)).json<FakeReply>().pid
  t.not(after, before, 'starting it spawns a new process')
  await edge.stopMachine('two')
  await edge.suspendMachine('one')
  t.equal(edge.machine('one')?.state, 'suspended')
  // The suspended process cannot answer; the edge resumes it for the request.
  t.equal((await request(edge.url)).json<FakeReply>().machine, 'one')
  t.equal(edge.machine('one')?.state, 'started')
})

test('a Machine that exits at start-up fails the launch with its output', async (t) => {
  await t.rejects(launchMachines({ config, count: 1, app: 'demo', navigator: config }), { code: 'NAV_FLY_EDGE_LAUNCH_FAILED' })
})
