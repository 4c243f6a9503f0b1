// Go's time.ParseDuration format, the one duration syntax of the YAML file.
// Parsing goes through integer nanoseconds (BigInt) so that "1.1s" is exactly
// 1100 ms and a year-long cookie does not lose precision.

const UNIT_NANOSECONDS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu, also accepted by Go
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n
}

/** Days, weeks and years (365 days) as well: the Go Navigator reads cache max-ages such as `1y` so. */
const CACHE_UNIT_NANOSECONDS: Record<string, bigint> = {
  ...UNIT_NANOSECONDS,
  d: 86_400_000_000_000n,
  w: 604_800_000_000_000n,
  y: 31_536_000_000_000_000n
}

const COMPONENT_SOURCE = '(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:ns|us|µs|μs|ms|s|m|h)'

/** JSON Schema / RegExp source that accepts exactly what `parseDuration` accepts. */
export const DURATION_PATTERN = `^(?:0|(?:${COMPONENT_SOURCE})+)$`

const CACHE_COMPONENT_SOURCE = '(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:ns|us|µs|μs|ms|s|m|h|d|w|y)'

/** JSON Schema / RegExp source that accepts exactly what `parseCacheDuration` accepts. */
export const CACHE_DURATION_PATTERN = `^(?:0|(?:${CACHE_COMPONENT_SOURCE})+)$`

const DURATION_REGEX = new RegExp(DURATION_PATTERN)
const COMPONENT_REGEX = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/g
const CACHE_DURATION_REGEX = new RegExp(CACHE_DURATION_PATTERN)
const CACHE_COMPONENT_REGEX = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h|d|w|y)/g
const MAX_NANOSECONDS = 9_223_372_036_854_775_807n // Go's time.Duration is an int64

/** True when `text` is a duration `parseDuration` accepts. */
export function isDuration (text: string): boolean {
  return DURATION_REGEX.test(text)
}

/**
 * Parses a Go duration ("500ms", "30m", "2h", "1h30m", "1.5s", "0") into milliseconds.
 * Units: ns, us (µs, μs), ms, s, m, h; decimals allowed; signs, spaces and bare numbers other than "0" are rejected.
 */
export function parseDuration (text: string): number {
  if (typeof text !== 'string' || !DURATION_REGEX.test(text)) {
    throw new TypeError(`${JSON.stringify(text)} is not a duration: use Go's format, for example 500ms, 30m, 2h or 1h30m`)
  }
  return sumComponents(text, COMPONENT_REGEX, UNIT_NANOSECONDS)
}

/**
 * Parses a cache lifetime (`server.static.cache_control`) into milliseconds: a Go duration, or one in days (`d`),
 * weeks (`w`) or years of 365 days (`y`), as in `1y`, `1.5y`, `2w3d`.
 */
export function parseCacheDuration (text: string): number {
  if (typeof text !== 'string' || !CACHE_DURATION_REGEX.test(text)) {
    throw new TypeError(`${JSON.stringify(text)} is not a duration: use Go's format or days, weeks and years, for example 0, 5m, 24h, 7d, 1w or 1y`)
  }
  return sumComponents(text, CACHE_COMPONENT_REGEX, CACHE_UNIT_NANOSECONDS)
}

function sumComponents (text: string, components: RegExp, units: Record<string, bigint>): number {
  if (text === '0') return 0
  let total = 0n
  for (const match of text.matchAll(components)) {
    const unit = units[match[3]]
    const whole = match[1] === '' ? 0n : BigInt(match[1])
    total += whole * unit
    const fraction = match[2] ?? ''
    if (fraction !== '') {
      total += (BigInt(fraction) * unit) / 10n ** BigInt(fraction.length)
    }
    if (total > MAX_NANOSECONDS) {
      throw new RangeError(`${JSON.stringify(text)} is out of range: a duration is at most about 2562047h`)
    }
  }
  return Number(total) / 1e6
}

const HOUR_MS = 3_600_000
const MINUTE_MS = 60_000

/**
 * Formats milliseconds as a Go duration that `parseDuration` (and Go) read back to the same value:
 * `10s`, `1m30s`, `800ms`, `2h`, `1h0m5s` is written `1h5s`. Zero is `0s`.
 */
export function formatDuration (ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`cannot format ${ms} ms as a duration`)
  }
  if (ms === 0) return '0s'
  if (ms < 1) {
    return `${trimNumber(ms * 1000)}µs`
  }
  if (ms < 1000) return `${trimNumber(ms)}ms`
  let rest = ms
  let out = ''
  const hours = Math.floor(rest / HOUR_MS)
  if (hours > 0) {
    out += `${hours}h`
    rest -= hours * HOUR_MS
  }
  const minutes = Math.floor(rest / MINUTE_MS)
  if (minutes > 0) {
    out += `${minutes}m`
    rest -= minutes * MINUTE_MS
  }
  if (rest > 0) out += `${trimNumber(rest / 1000)}s`
  return out
}

// Rounds away binary noise (1100.0000000000002) without losing real sub-unit precision.
function trimNumber (value: number): string {
  return String(Number(value.toFixed(9)))
}
