import Fastify from 'fastify'
import { expect, test } from 'tstyche'
import { Supervisor, processSupervisor, type StandaloneStatus, type TenantStatus } from '@navigator/supervisor'
import type { ApplicationsConfig } from '@navigator/config'

declare const applications: ApplicationsConfig

test('the plugin takes a Supervisor or the options of one, never both', () => {
  const app = Fastify()
  expect(app.register(processSupervisor, { applications })).type.not.toRaiseError()
  expect(app.register(processSupervisor, { supervisor: new Supervisor({ applications, logger: app.log }) })).type.not.toRaiseError()
  expect(app.register(processSupervisor, { supervisor: new Supervisor({ applications, logger: app.log }), applications })).type.toRaiseError()
})

test('app.processSupervisor is declared, and its statuses are typed', () => {
  const app = Fastify()
  expect(app.processSupervisor).type.toBe<Supervisor>()
  expect(app.processSupervisor.tenantStatus('a')).type.toBe<TenantStatus>()
  expect(app.processSupervisor.standaloneStatus('cable')).type.toBe<StandaloneStatus>()
  expect(app.processSupervisor.ensureTenant('a')).type.toBe<Promise<{ port: number }>>()
  expect(app.processSupervisor.whenStandaloneRunning('cable', 1000)).type.toBe<Promise<boolean>>()
})
