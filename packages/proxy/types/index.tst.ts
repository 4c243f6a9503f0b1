import Fastify from 'fastify'
import { expect, test } from 'tstyche'
import {
  ANSWERED,
  NEXT,
  createUpstreamProxy,
  stepHook,
  withForwardOptions,
  type RequestContext,
  type Step,
  type StepResult,
  type UpstreamProxy
} from '@navigator/proxy'

test('a step returns NEXT, ANSWERED (or NEEDS_FASTIFY), or a promise of one', () => {
  expect<Step>().type.toBeAssignableFrom({ name: 'mine', run: (ctx: RequestContext) => ctx.path === '/' ? ANSWERED : NEXT })
  expect<Step>().type.toBeAssignableFrom({ name: 'async', run: async (): Promise<typeof NEXT> => NEXT })
  expect<Step>().type.not.toBeAssignableFrom({ name: 'bad', run: () => true })
  expect<StepResult>().type.not.toBeAssignableFrom('next')
})

test('stepHook makes an onRequest hook of a step', () => {
  const app = Fastify()
  expect(app.addHook('onRequest', stepHook({ name: 'x', run: () => NEXT }))).type.not.toRaiseError()
})

test('createUpstreamProxy takes its options by name, and forward() its per-request options', () => {
  const proxy = createUpstreamProxy({ headersTimeoutMs: 1000, trustForwarded: true })
  expect(proxy).type.toBe<UpstreamProxy>()
  expect(createUpstreamProxy).type.not.toBeCallableWith({ headersTimeout: 1000 })
  expect(proxy.forward).type.toBeCallableWith({} as RequestContext, { origin: 'http://127.0.0.1:3000' }, { writeProgressTimeoutMs: 5000 })
  expect(proxy.forward).type.not.toBeCallableWith({} as RequestContext, 'http://127.0.0.1:3000')
  expect(withForwardOptions(proxy, { headers: { 'x-a': 'b' } })).type.toBe<UpstreamProxy>()
})
