import { test } from 'tap'
import { formatDuration, isDuration, parseDuration } from '../src/duration.js'

test('Go durations parse to milliseconds', async (t) => {
  const cases: Array<[string, number]> = [
    ['500ms', 500], ['30m', 1_800_000], ['2h', 7_200_000], ['1h30m', 5_400_000], ['1m30.5s', 90_500],
    ['1.5s', 1500], ['.5s', 500], ['1.s', 1000], ['0', 0], ['0s', 0], ['10s', 10_000], ['24h', 86_400_000],
    ['1500us', 1.5], ['1500µs', 1.5], ['1500μs', 1.5], ['2000000ns', 2], ['1h1m1s1ms', 3_661_001], ['8760h', 31_536_000_000]
  ]
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, text)
})

test('anything but a Go duration is rejected', async (t) => {
  for (const text of ['', '10', '1d', '5 m', '-5s', '+5s', 's', '1.2.3s', '1h 30m', 'ms', '1H', ' 1s', '0.0', '00']) {
    t.throws(() => parseDuration(text), TypeError, JSON.stringify(text))
    t.notOk(isDuration(text), `isDuration(${JSON.stringify(text)})`)
  }
  t.throws(() => parseDuration(5 as unknown as string), TypeError, 'a number')
})

test('a duration beyond Go\'s int64 range is rejected', async (t) => {
  t.throws(() => parseDuration('2562048h'), RangeError)
})

test('formatDuration writes Go durations that parse back to the same value', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '0s'], [800, '800ms'], [10_000, '10s'], [90_000, '1m30s'], [7_200_000, '2h'], [5_400_000, '1h30m'],
    [3_605_000, '1h5s'], [1500, '1.5s'], [90_500, '1m30.5s'], [1.5, '1.5ms'], [0.001, '1µs'], [86_400_000, '24h']
  ]
  for (const [ms, text] of cases) {
    t.equal(formatDuration(ms), text, `${ms} ms`)
    t.equal(parseDuration(text), ms, `${text} parses back`)
  }
  t.throws(() => formatDuration(-1), RangeError)
  t.throws(() => formatDuration(Number.NaN), RangeError)
})

test('formatDuration and parseDuration round-trip any whole number of milliseconds (property)', async (t) => {
  const fc = await import('fast-check')
  fc.assert(fc.property(fc.integer({ min: 0, max: 10 * 365 * 86_400_000 }), (ms) => parseDuration(formatDuration(ms)) === ms))
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom('h', 'm', 's', 'ms')), { minLength: 1, maxLength: 4 }),
    (parts) => {
      const factor: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }
      const text = parts.map(([n, unit]) => `${n}${unit}`).join('')
      return parseDuration(text) === parts.reduce((sum, [n, unit]) => sum + n * factor[unit], 0)
    }
  ))
  t.pass('properties hold')
})
