import { test } from 'tap'
import fc from 'fast-check'
import {
  buildReplayHeader,
  buildReplayJson,
  parseReplayHeader,
  parseReplaySrc,
  parseReplayFailed,
  isReplayable,
  MAX_REPLAY_BODY_BYTES,
  DEFAULT_MAX_REPLAY_BODY,
  isValidMachineId
} from '../src/index.js'

test('buildReplayHeader writes each target kind and quotes region lists', async (t) => {
  t.equal(buildReplayHeader({ instance: '00bb33ff' }), 'instance=00bb33ff')
  t.equal(buildReplayHeader({ region: ['sjc', 'any'] }), 'region="sjc,any"')
  t.equal(buildReplayHeader({ region: 'ord' }), 'region=ord')
  t.equal(buildReplayHeader({ region: ['ord'] }), 'region=ord')
  t.equal(buildReplayHeader({ app: 'my-worker', timeoutMs: 10_000, fallback: 'force_self' }), 'app=my-worker;timeout=10s;fallback=force_self')
  t.equal(
    buildReplayHeader({ instance: 'm2', state: 'nav-sticky', timeoutMs: 800, fallback: 'force_self' }),
    'instance=m2;state=nav-sticky;timeout=800ms;fallback=force_self'
  )
  t.equal(buildReplayHeader({ preferInstance: 'm3', elsewhere: true }), 'prefer_instance=m3;elsewhere=true')
  t.equal(buildReplayHeader({ region: 'ord', elsewhere: false }), 'region=ord')
})

test('buildReplayHeader refuses every part outside its grammar', async (t) => {
  const bad: Array<Parameters<typeof buildReplayHeader>[0]> = [
    {},
    { instance: 'M2' },
    { instance: 'm2;app=evil' },
    { instance: 'a'.repeat(65) },
    { instance: '' },
    { region: 'ORD' },
    { region: 'o' },
    { region: [] },
    { region: ['ord', 'sjc,any'] },
    { app: 'evil app' },
    { app: 'a'.repeat(64) },
    { instance: 'm2', state: 'a;b' },
    { instance: 'm2', state: 'a"b' },
    { instance: 'm2', state: 'x'.repeat(257) },
    { instance: 'm2', timeoutMs: -1 },
    { instance: 'm2', timeoutMs: Number.NaN },
    { instance: 'm2', fallback: 'elsewhere' as 'force_self' },
    { instance: 'm2\r\nset-cookie: x=1' }
  ]
  for (const fields of bad) {
    t.throws(() => buildReplayHeader(fields), { code: 'NAV_FLY_REPLAY_INVALID_FIELD' }, JSON.stringify(fields))
  }
})

test('buildReplayJson gives the JSON form with Fly spellings', async (t) => {
  t.same(buildReplayJson({ region: ['sjc', 'any'], preferInstance: 'abc', timeoutMs: 90_000 }), {
    prefer_instance: 'abc',
    region: 'sjc,any',
    timeout: '90s'
  })
})

test('timeout= is whole seconds or whole milliseconds, never compound or fractional', async (t) => {
  const timeout = (ms: number): string => buildReplayJson({ instance: 'm2', timeoutMs: ms }).timeout as string
  t.equal(timeout(90_000), '90s', 'not 1m30s')
  t.equal(timeout(1_500), '1500ms', 'not 1.5s')
  t.equal(timeout(10_000), '10s')
  t.equal(timeout(3_600_000), '3600s', 'not 1h')
  t.equal(timeout(5_400_000), '5400s', 'not 1h30m')
  t.equal(timeout(800), '800ms')
  t.equal(timeout(1), '1ms')
  t.equal(timeout(0.2), '1ms', 'a fraction of a millisecond is rounded up, never written as µs')
  t.equal(timeout(1000.5), '1001ms', 'rounded up to a whole millisecond')
  t.equal(timeout(61_001), '61001ms')
  t.equal(buildReplayHeader({ instance: 'm2', timeoutMs: 90_000, fallback: 'force_self' }), 'instance=m2;timeout=90s;fallback=force_self')
  t.equal(parseReplayHeader('instance=m2;timeout=1500ms')?.timeoutMs, 1_500, 'and the reader takes them back')
})

test('parseReplayHeader reads what buildReplayHeader writes', async (t) => {
  const fields = { instance: 'm2', state: 'nav-sticky', timeoutMs: 10_000, fallback: 'force_self' as const }
  t.same(parseReplayHeader(buildReplayHeader(fields)), fields)
  t.same(parseReplayHeader('region="sjc,any";app=target-app'), { region: ['sjc', 'any'], app: 'target-app' })
  t.same(parseReplayHeader(' Instance = m1 ; elsewhere=true'), { instance: 'm1', elsewhere: true })
})

test('the parsers are total: garbage gives null or partial results, never an exception', async (t) => {
  t.equal(parseReplayHeader(undefined), null)
  t.equal(parseReplayHeader(''), null)
  t.equal(parseReplayHeader(';;;==='), null)
  t.same(parseReplayHeader('instance=BAD;region=ord'), { region: 'ord' })
  t.same(parseReplayHeader('timeout=forever;app=x'), { app: 'x' })
  t.equal(parseReplaySrc(42), null)
  t.same(parseReplaySrc(['instance=m1;region=ord;t=1700000000000000;state=nav-sticky']), {
    instance: 'm1',
    region: 'ord',
    t: 1700000000000000,
    state: 'nav-sticky'
  })
  t.same(parseReplaySrc('instance=m1;state="bad state"'), { instance: 'm1' })
  t.same(parseReplayFailed('instance=m2;app=web;region=ord;replay_source=m1;reason=timeout;elapsed_ms=10003'), {
    instance: 'm2',
    app: 'web',
    region: 'ord',
    replaySource: 'm1',
    reason: 'timeout',
    elapsedMs: 10003
  })
  t.same(parseReplayFailed('reason=no candidate'), {})
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (value) => {
    parseReplayHeader(value)
    parseReplaySrc(value)
    parseReplayFailed(value)
    return true
  }))
})

test('isReplayable: no body or a Content-Length up to 1 MB (1,000,000 bytes); chunked or unreadable lengths are not', async (t) => {
  t.equal(MAX_REPLAY_BODY_BYTES, 1_000_000, 'Fly\'s 1 MB')
  t.equal(DEFAULT_MAX_REPLAY_BODY, MAX_REPLAY_BODY_BYTES, 'the default of routes.fly.max_replay_body')
  t.equal(isReplayable({}), true)
  t.equal(isReplayable({ 'content-length': '0' }), true)
  t.equal(isReplayable({ 'content-length': '1000000' }), true, '1,000,000 bytes: replayable')
  t.equal(isReplayable({ 'content-length': '1000001' }), false, '1,000,001 bytes: not')
  t.equal(isReplayable({ 'content-length': '1048575' }), false, 'the old 1 MiB rule is gone')
  t.equal(isReplayable({ 'content-length': '4096' }, 4096), true, 'a configured limit is honoured')
  t.equal(isReplayable({ 'content-length': '4097' }, 4096), false)
  t.equal(isReplayable({ 'content-length': '1' }, 0), false, 'a limit of 0 replays only requests without a body')
  t.equal(isReplayable({ 'content-length': '0' }, 0), true)
  t.equal(isReplayable({ 'transfer-encoding': 'chunked' }), false)
  t.equal(isReplayable({ 'transfer-encoding': 'chunked', 'content-length': '10' }), false)
  t.equal(isReplayable({ 'content-length': '-1' }), false)
  t.equal(isReplayable({ 'content-length': '1e3' }), false)
})

test('isValidMachineId accepts 1 to 64 of a-z, 0-9 and "-"', async (t) => {
  t.equal(isValidMachineId('3d8d9930be6e89'), true)
  t.equal(isValidMachineId('a'.repeat(64)), true)
  t.equal(isValidMachineId('a'.repeat(65)), false)
  t.equal(isValidMachineId('M2'), false)
  t.equal(isValidMachineId(''), false)
  t.equal(isValidMachineId('m2.sig'), false)
})
