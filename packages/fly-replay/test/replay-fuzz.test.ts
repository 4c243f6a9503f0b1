import { test } from 'tap'
import fc from 'fast-check'
import { buildReplayHeader, buildReplayJson, parseReplayHeader, type ReplayFields } from '../src/replay-header.js'
import { parseReplayFailed, parseReplaySrc } from '../src/replay-src.js'

// Hostile input (issue 7): whatever fields reach the fly-replay builder (a value from a request, a config typo, a
// number out of range), it either throws NAV_FLY_REPLAY_INVALID_FIELD or returns a value inside the header's
// grammar: ASCII only, no control character, no quote, `;` only between parts, `key=value` parts Fly knows.

const MACHINE = '[a-z0-9-]{1,64}'
const REGION = '[a-z0-9]{2,8}'
/** A timeout is one integer and one unit: whole seconds or whole milliseconds, never `1m30s` nor `1.5s`. */
const TIMEOUT = '[1-9][0-9]{0,15}(?:s|ms)'
const PART = [
  `instance=${MACHINE}`, `prefer_instance=${MACHINE}`, `region=${REGION}`, `region="${REGION}(?:,${REGION})+"`,
  'app=[a-z0-9-]{1,63}', 'state=[A-Za-z0-9._~-]{1,256}', 'elsewhere=true', `timeout=${TIMEOUT}`,
  'fallback=(?:force_self|prefer_self)'
].join('|')
const HEADER_GRAMMAR = new RegExp(`^(?:${PART})(?:;(?:${PART}))*$`)

const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom('', 'm2;instance=evil', 'm2\r\nSet-Cookie: a=1', 'm2"', 'M2', ' m2', 'ord,any', 'ord;x', 'ams\0', 'ąę',
    'a'.repeat(65), 'nav sticky', 'nav-sticky', 'force_self ', 'true'),
  fc.stringMatching(new RegExp(`^${MACHINE}$`)),
  fc.stringMatching(new RegExp(`^${REGION}$`))
)
const hostileNumber = fc.oneof(
  fc.double(), fc.integer(), fc.constantFrom(0, -1, 0.5, 1e-7, 1e-300, 1e21, 1e300, Number.MAX_VALUE, Number.NaN, Infinity, 3_600_000.000001)
)
const anything: fc.Arbitrary<unknown> = fc.oneof(hostileText, hostileNumber, fc.boolean(), fc.constant(null), fc.constant(undefined),
  fc.array(hostileText, { maxLength: 3 }), fc.constant({ toString: () => 'm2' }))

const fields: fc.Arbitrary<ReplayFields> = fc.record({
  instance: fc.oneof(hostileText, anything),
  preferInstance: anything,
  region: fc.oneof(hostileText, fc.array(hostileText, { maxLength: 4 }), anything),
  app: fc.oneof(hostileText, anything),
  state: fc.oneof(hostileText, anything),
  timeoutMs: fc.oneof(hostileNumber, anything),
  fallback: fc.oneof(fc.constantFrom('force_self', 'prefer_self'), anything),
  elsewhere: fc.oneof(fc.boolean(), anything)
}, { requiredKeys: [] }) as fc.Arbitrary<ReplayFields>

/** Fields that are all valid, so the property also covers what the builder does write. */
const validFields: fc.Arbitrary<ReplayFields> = fc.record({
  instance: fc.stringMatching(new RegExp(`^${MACHINE}$`)),
  region: fc.oneof(fc.stringMatching(new RegExp(`^${REGION}$`)), fc.array(fc.stringMatching(new RegExp(`^${REGION}$`)), { minLength: 1, maxLength: 3 })),
  app: fc.stringMatching(/^[a-z0-9-]{1,63}$/),
  state: fc.stringMatching(/^[A-Za-z0-9._~-]{1,256}$/),
  timeoutMs: fc.oneof(fc.integer({ min: 1, max: 86_400_000 }), fc.double({ min: 0.001, max: 1e7, noNaN: true })),
  fallback: fc.constantFrom('force_self' as const, 'prefer_self' as const),
  elsewhere: fc.boolean()
}, { requiredKeys: [] })

function buildsInsideGrammar (input: ReplayFields): boolean {
  let value: string
  try {
    value = buildReplayHeader(input)
  } catch (err) {
    return (err as { code?: string }).code === 'NAV_FLY_REPLAY_INVALID_FIELD'
  }
  return HEADER_GRAMMAR.test(value) && value.length <= 8192
}

test('buildReplayHeader either refuses hostile fields or returns a value inside the fly-replay grammar', async (t) => {
  fc.assert(fc.property(fields, buildsInsideGrammar), { numRuns: 10_000, seed: 7 })
  t.pass('10000 hostile field sets')
})

test('valid fields build a value inside the grammar that parses back to the same fields', async (t) => {
  let built = 0
  fc.assert(fc.property(validFields, (input) => {
    if (!buildsInsideGrammar(input)) return false
    const target = input.instance ?? input.region ?? input.app
    if (target === undefined) return true
    built++
    const parsed = parseReplayHeader(buildReplayHeader(input))
    if (parsed === null) return false
    const region = Array.isArray(input.region) && input.region.length === 1 ? input.region[0] : input.region
    return parsed.instance === input.instance && JSON.stringify(parsed.region) === JSON.stringify(region) &&
      parsed.app === input.app && parsed.state === input.state && parsed.fallback === input.fallback &&
      (input.timeoutMs === undefined || (parsed.timeoutMs !== undefined && parsed.timeoutMs >= input.timeoutMs && parsed.timeoutMs - input.timeoutMs < 1))
  }), { numRuns: 5000, seed: 7 })
  t.ok(built > 1000, `${built} valid values built and parsed back`)
})

test('the JSON form is refused or holds only grammar-checked strings', async (t) => {
  fc.assert(fc.property(fields, (input) => {
    let json
    try {
      json = buildReplayJson(input)
    } catch (err) {
      return (err as { code?: string }).code === 'NAV_FLY_REPLAY_INVALID_FIELD'
    }
    return Object.values(json).every((value) => typeof value === 'boolean' || /^[\x21-\x7e]+$/.test(String(value)))
  }), { numRuns: 5000, seed: 7 })
  t.pass('5000 field sets')
})

test('the request-side parsers are total and return only grammar-checked parts', async (t) => {
  const value = fc.oneof(anything, fc.array(fc.string(), { maxLength: 3 }),
    fc.array(fc.tuple(fc.constantFrom('instance', 'state', 'region', 'app', 't', 'reason', 'replay_source', 'elapsed_ms', 'timeout', 'x'),
      hostileText), { maxLength: 6 }).map((parts) => parts.map(([k, v]) => `${k}=${v}`).join(';')))
  fc.assert(fc.property(value, (header) => {
    for (const parsed of [parseReplayHeader(header), parseReplaySrc(header), parseReplayFailed(header)]) {
      if (parsed === null) continue
      for (const part of Object.values(parsed)) {
        const texts = Array.isArray(part) ? part : [part]
        if (!texts.every((text) => typeof text === 'number' || typeof text === 'boolean' || /^[A-Za-z0-9._~-]+$/.test(text))) return false
      }
    }
    return true
  }), { numRuns: 5000, seed: 7 })
  t.pass('5000 header values')
})
