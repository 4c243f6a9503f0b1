import { expect, test } from 'tstyche'
import {
  DEFAULT_NAVIGATOR_BIN,
  FlyEdge,
  launchMachines,
  machineConfigText,
  NAV_FLY_EDGE_INVALID_OPTION,
  parseReplayCacheRule,
  planPorts,
  PORTS_PER_MACHINE,
  regionMatches,
  startLocalFly,
  type LaunchedMachines,
  type LocalFly,
  type MachineLauncher,
  type MachineSpec,
  type PortPlan,
  type ReplayCacheRule,
  type RouteEvent
} from '@navigator/fly-edge'

test('the edge is built from an app and its Machines, and reports each routing decision', () => {
  const machines: MachineSpec[] = [{ id: 'm1', url: 'http://127.0.0.1:3001', region: 'iad' }]
  const edge = new FlyEdge({ app: 'demo', machines, listen: { host: '127.0.0.1', port: 0 }, autostart: false })
  expect(edge.listen()).type.toBe<Promise<string>>()
  expect(edge.close()).type.toBe<Promise<void>>()
  expect(edge.on('route', (event: RouteEvent) => event.machineId)).type.toBe<FlyEdge>()
  expect(FlyEdge).type.not.toBeConstructableWith({ machines })
  expect<MachineSpec>().type.not.toBeAssignableFrom({ id: 'm1' })
})

test('launchMachines and startLocalFly run a config on Machines', () => {
  expect(launchMachines({ config: 'navigator.yml', count: 2, app: 'demo', dataDir: '/tmp/data', env: { LOG_LEVEL: 'info' } })).type.toBe<Promise<LaunchedMachines>>()
  expect(launchMachines).type.not.toBeCallableWith({ config: 'navigator.yml', count: '2', app: 'demo' })
  expect<LaunchedMachines['launcher']>().type.toBe<MachineLauncher>()
  expect<LaunchedMachines['dataDirs']>().type.toBe<Record<string, string>>()
  expect(startLocalFly({ config: 'navigator.yml', machines: 2, app: 'demo' })).type.toBe<Promise<LocalFly>>()
  expect(DEFAULT_NAVIGATOR_BIN).type.toBe<string>()
})

test('a Machine\'s copy of a config and its port plan', () => {
  expect(machineConfigText('server:\n  listen: 3000\n', 20000, { m1: 'http://127.0.0.1:20030' })).type.toBe<string>()
  expect(machineConfigText).type.toBeCallableWith('', 20000, {}, { flycastUrl: 'http://127.0.0.1:20031', env: {} })
  expect(machineConfigText).type.not.toBeCallableWith('', '20000', {})
  expect(planPorts('')).type.toBe<PortPlan>()
  expect<PortPlan['standalone']>().type.toBe<Map<number, number>>()
  expect(PORTS_PER_MACHINE).type.toBe<10>()
})

test('replay cache rules, regions and errors', () => {
  expect(parseReplayCacheRule('path_prefix=/,ttl_seconds=300,type=cookie,name=s')).type.toBe<ReplayCacheRule>()
  expect<ReplayCacheRule['type']>().type.toBe<'cookie' | 'header'>()
  expect(regionMatches).type.toBeCallableWith('eu', 'ams')
  expect(new NAV_FLY_EDGE_INVALID_OPTION('count must be an integer >= 1')).type.toBeAssignableTo<TypeError>()
})
