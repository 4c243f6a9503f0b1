import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { expect, test } from 'tstyche'
import { parseConfig, type NavigatorConfig } from '@navigator/config'
import type { MaintenanceResponder, Step } from '@navigator/proxy'
import {
  buildServer,
  createPipeline,
  createStaticFileFinder,
  DEFAULT_LOG_LEVEL,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  identityFrom,
  InvalidLogLevelError,
  LOG_LEVELS,
  loadMaintenancePage,
  maintenanceFor,
  pipelinePlugin,
  type BuildServerOptions,
  type Identity,
  type NavigatorServer,
  type Pipeline,
  type StaticFileFinder
} from '@navigator/server'

const config = parseConfig('server:\n  listen: 3000\n')

test('buildServer takes a loaded config and its options, and gives the running server', () => {
  expect(buildServer(config)).type.toBe<Promise<NavigatorServer>>()
  expect(buildServer).type.toBeCallableWith(config, { env: {}, upstreamTimeoutMs: 5000, rawPath: false, cablePingIntervalMs: 1000 })
  expect(buildServer).type.toBeCallableWith(config, { logger: Fastify().log })
  expect(buildServer).type.not.toBeCallableWith('navigator.yml')
  expect(buildServer).type.not.toBeCallableWith(config, { upstreamTimeoutMs: '5s' })
  expect<BuildServerOptions>().type.not.toBeAssignableFrom({ port: 3000 })
})

test('the running server exposes Fastify, its config and pipeline, and listen, reload, reloadFile and close', async () => {
  const navigator = await buildServer(config)
  expect(navigator.fastify).type.toBe<FastifyInstance>()
  expect(navigator.config).type.toBe<NavigatorConfig>()
  expect(navigator.pipeline.steps).type.toBe<readonly Step[]>()
  expect(navigator.log).type.toBe<FastifyBaseLogger>()
  expect(navigator.listen()).type.toBe<Promise<string>>()
  expect(navigator.reload(config)).type.toBe<Promise<void>>()
  expect(navigator.reloadFile('navigator.yml')).type.toBe<Promise<void>>()
  expect(navigator.reloadFile).type.not.toBeCallableWith(config)
  expect(navigator.close()).type.toBe<Promise<void>>()
  expect(navigator).type.not.toHaveProperty('port')
})

test('identity, log levels and timeouts are typed constants and helpers', () => {
  expect(identityFrom(process.env)).type.toBe<Identity>()
  expect<Identity>().type.toBe<{ machineId: string | null, appName: string | null, region: string | null }>()
  expect(DEFAULT_LOG_LEVEL).type.toBe<'info'>()
  expect(LOG_LEVELS).type.toBe<readonly string[]>()
  expect(DEFAULT_UPSTREAM_TIMEOUT_MS).type.toBeAssignableTo<number>()
  expect(new InvalidLogLevelError(LOG_LEVELS.join(', '), 'loud').code).type.toBe<'NAV_SERVER_INVALID_LOG_LEVEL'>()
  expect(InvalidLogLevelError).type.not.toBeConstructableWith('loud')
})

test('the pipeline plugin registers a pipeline with its public folder', () => {
  expect(createPipeline).type.toBeCallableWith({ list: [], close: async () => {} })
  expect(createPipeline({ list: [], close: async () => {} }, { rawPath: false, metrics: true })).type.toBe<Pipeline>()
  const pipeline = createPipeline({ list: [], close: async () => {} })
  expect(Fastify().register(pipelinePlugin, { pipeline, publicDir: '/srv/public' })).type.not.toRaiseError()
  expect(Fastify().register(pipelinePlugin, { pipeline })).type.toRaiseError()
})

test('the maintenance page and the static file finder take the config\'s server section', () => {
  expect(loadMaintenancePage(config.server)).type.toBe<Buffer>()
  expect(maintenanceFor(config.server)).type.toBe<MaintenanceResponder>()
  expect(createStaticFileFinder('/srv/public')).type.toBe<StaticFileFinder>()
  expect(createStaticFileFinder).type.not.toBeCallableWith(42)
})
