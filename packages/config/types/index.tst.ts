import { expect, test } from 'tstyche'
import { ConfigError, loadConfig, parseConfig, type ConfigProblem, type NavigatorConfig } from '@navigator/config'

test('loadConfig and parseConfig give a NavigatorConfig; problems carry their position', () => {
  expect(loadConfig('navigator.yml')).type.toBe<Promise<NavigatorConfig>>()
  expect(loadConfig('navigator.yml', { env: {}, launchPaths: true })).type.toBe<Promise<NavigatorConfig>>()
  expect(parseConfig('server: {}', { file: 'x.yml' })).type.toBe<NavigatorConfig>()
  expect(parseConfig).type.not.toBeCallableWith('server: {}', { file: 1 })
  expect(new ConfigError([]).problems).type.toBe<ConfigProblem[]>()
  expect<ConfigProblem>().type.toHaveProperty('line')
  expect<ConfigProblem>().type.toHaveProperty('column')
})

test('the normalised config is typed down to its leaves', () => {
  const config = parseConfig('')
  expect(config.server.listen.port).type.toBe<number>()
  expect(config.routes.fly.stickySessions.fallbackMode).type.toBe<'maintenance' | 'route_to_available'>()
  expect(config.applications.tenants.map((tenant) => tenant.start)).type.toBe<Array<'lazy' | 'eager'>>()
})
