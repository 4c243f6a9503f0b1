import Fastify from 'fastify'
import { expect, test } from 'tstyche'
import stickySessions, { createStickySessions, type StickySession, type StickySessionsOptions } from '@navigator/sticky-sessions'
import type { Step } from '@navigator/proxy'

test('the plugin registers with its options, and they are checked', () => {
  const app = Fastify()
  expect(app.register(stickySessions, { paths: ['/app/*', '/cable'], cookieMaxAge: '4h', secret: ['new', 'old'] })).type.not.toRaiseError()
  expect(app.register(stickySessions, { fallbackMode: 'route_to_available', replayCache: true })).type.not.toRaiseError()
  expect(app.register(stickySessions, { fallbackMode: 'elsewhere' })).type.toRaiseError()
  expect(app.register(stickySessions, { paths: '/app/*' })).type.toRaiseError()
  expect(app.register(stickySessions, { cookieMaxAge: true })).type.toRaiseError()
})

test('request.stickySession is declared on every Fastify request', () => {
  const app = Fastify()
  app.get('/', async (request) => {
    expect(request.stickySession).type.toBe<StickySession | null>()
    expect(request.stickySession?.action).type.toBe<'serve' | 'replay' | 'proxy' | 'fallback' | undefined>()
    return 'ok'
  })
})

test('createStickySessions gives a step and a close, or null when off', () => {
  const log = Fastify().log
  const sticky = createStickySessions({ machineId: 'm1' }, log)
  expect(sticky).type.toBe<{ readonly step: Step, close: () => Promise<void> } | null>()
  expect<StickySessionsOptions>().type.toBeAssignableFrom({ cookieName: 'x', port: 3000 })
})
