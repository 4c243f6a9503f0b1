import Fastify from 'fastify'
import { expect, test } from 'tstyche'
import flyReplayRules, {
  buildReplayHeader,
  buildReplayJson,
  createReplayRules,
  flyReplayRules as namedPlugin,
  InvalidReplayFieldError,
  isReplayable,
  navigatorReplayState,
  parseReplayFailed,
  parseReplayHeader,
  parseReplaySrc,
  type FlyReplayRulesOptions,
  type ReplayFailure,
  type ReplayFallback,
  type ReplayFields,
  type ReplayJson,
  type ReplayRule,
  type ReplayRules,
  type ReplaySource
} from '@navigator/fly-replay'
import { createMaintenanceResponder, type Step } from '@navigator/proxy'

const maintenance = createMaintenanceResponder('<p>Down for maintenance</p>')
const rule: ReplayRule = { path: /^\/admin\//, target: { kind: 'region', regions: ['iad'] }, status: 307, methods: null }

test('the plugin is the default export and a named one, and registers with its options checked', () => {
  expect(flyReplayRules).type.toBe(namedPlugin)
  const app = Fastify()
  expect(app.register(flyReplayRules, { rules: [rule], port: 3000, maintenance })).type.not.toRaiseError()
  expect(app.register(flyReplayRules, { rules: [rule], port: 3000, maintenance, machineId: 'm1', maxReplayBody: 1024, resolveAddress: () => null })).type.not.toRaiseError()
  expect(app.register(flyReplayRules, { rules: [rule], maintenance })).type.toRaiseError()
  expect(app.register(flyReplayRules, { rules: [rule], port: '3000', maintenance })).type.toRaiseError()
  expect(app.register(flyReplayRules, { rules: [{ path: '/admin/*' }], port: 3000, maintenance })).type.toRaiseError()
})

test('createReplayRules gives a pipeline step and a close', () => {
  const options: FlyReplayRulesOptions = { rules: [rule], port: 3000, maintenance }
  expect(createReplayRules(options)).type.toBe<ReplayRules>()
  expect(createReplayRules(options).step).type.toBe<Step>()
  expect(createReplayRules(options).close).type.toBe<() => Promise<void>>()
})

test('a fly-replay value is built from typed fields and parsed back to them', () => {
  expect(buildReplayHeader({ instance: 'm1', fallback: 'prefer_self', timeoutMs: 5000 })).type.toBe<string>()
  expect(buildReplayHeader).type.not.toBeCallableWith({ fallback: 'somewhere' })
  expect(buildReplayHeader).type.not.toBeCallableWith({ timeoutMs: '5s' })
  expect(buildReplayJson({ region: ['iad', 'ord'] })).type.toBe<ReplayJson>()
  expect(parseReplayHeader('instance=m1')).type.toBe<ReplayFields | null>()
  expect<ReplayFallback>().type.toBe<'force_self' | 'prefer_self'>()
})

test('fly-replay-src and fly-replay-failed parse from any header value', () => {
  expect(parseReplaySrc(undefined)).type.toBe<ReplaySource | null>()
  expect(parseReplayFailed(['a', 'b'])).type.toBe<ReplayFailure | null>()
  expect(navigatorReplayState('state=nav-rule')).type.toBe<string | null>()
  expect(isReplayable({ 'content-length': '10' })).type.toBe<boolean>()
  expect(isReplayable).type.not.toBeCallableWith({}, '1mb')
})

test('errors are @fastify/error constructors whose code and status a caller can check', () => {
  const err = new InvalidReplayFieldError('instance', 'x')
  expect(err.code).type.toBe<'NAV_FLY_REPLAY_INVALID_FIELD'>()
  expect(err.statusCode).type.toBe<500>()
  expect(err).type.toBeAssignableTo<Error>()
})
