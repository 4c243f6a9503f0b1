import { test } from 'tap'
import { ConfigError, parseConfig } from '../src/index.js'

// A regular expression that backtracks catastrophically (issue 18, item 8) is a config error at --check and at
// start, never a server that freezes on one long path: nested repetition, and alternatives that can match the same
// text inside a repetition, which a nesting check alone lets through.

const config = (pattern: string): string => `routes:\n  rewrites:\n    - pattern: ${JSON.stringify(pattern)}\n      rewrite: "/x"\n  fly:\n    replay:\n      - path: ${JSON.stringify(pattern)}\n        region: ord\n`

/** How long one match of `pattern` takes on a 29-character path built to make it backtrack (as in the issue). */
function matchMs (pattern: string, path: string): number {
  const started = performance.now()
  new RegExp(pattern).test(path)
  return performance.now() - started
}

test('catastrophic patterns are reported in both places, with their position and what to write instead', async (t) => {
  const cases = ['^/(a+)+$', '^/(x*)*y', '^/((ab)*)+$', '^/(a|a)*$', '^/(\\w|\\d)+$']
  for (const pattern of cases) {
    const err = t.throws(() => parseConfig(config(pattern), { file: 'navigator.yml' })) as ConfigError
    t.ok(err instanceof ConfigError, pattern)
    t.equal(err.problems.length, 2, `${pattern}: both places`)
    t.match(err.message, /navigator\.yml:3:\d+: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically \(exponential/)
    t.match(err.message, /navigator\.yml:7:\d+: routes\.fly\.replay\.0\.path: this pattern can backtrack catastrophically/)
    t.match(err.message, /one character class instead of alternatives that overlap/)
    t.match(err.message, /one quantifier instead of nested ones/)
  }
})

test('the overlapping alternatives of the issue really backtrack, and a nesting check alone misses them', async (t) => {
  // Shown on a shorter path than the (22 characters): the point is the growth, not a multi-second wait.
  const slow = matchMs('^/(\\w|\\d)+$', `/${'1'.repeat(20)}!`)
  const fast = matchMs('^/\\w+$', `/${'1'.repeat(20)}!`)
  t.ok(slow > fast * 20, `(\\w|\\d)+ took ${slow.toFixed(1)} ms, \\w+ ${fast.toFixed(3)} ms`)
  const { createRequire } = await import('node:module')
  const safeRegex = createRequire(import.meta.url)('safe-regex2') as (re: RegExp) => boolean
  t.ok(safeRegex(/^\/(a|a)*$/) && safeRegex(/^\/(\w|\d)+$/), 'safe-regex2 passes both')
})

test('high-degree polynomial backtracking is reported too', async (t) => {
  const err = t.throws(() => parseConfig(config('^/.*a.*b.*c.*d$'), { file: 'navigator.yml' })) as ConfigError
  t.match(err.message, /navigator\.yml:3:\d+: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically \(4th degree polynomial time[^]*`\[\^\/\]\*` instead of `\.\*`/)
})

test('ordinary patterns load', async (t) => {
  const patterns = [
    '^/(.*)$', '^/api/v\\d+/', '^/api/(.*)', '^/assets/[a-f0-9]+\\.css$', '^/(users|posts)/\\d+$', '^(.+)/$',
    '^/(?!maintenance).*$', '^/([0-9]{4})/([0-9]{2})/([0-9]{2})/(.+)$', '^/.*\\.pdf$', '^/(en|es|fr)/(.*)$',
    '^/archive/([0-9]{4})/([0-9]{2})/(.*)$', '^/showcase/studios/([a-z]+)/request$', '^/([^/]+)$', '(?i)^/admin/'
  ]
  for (const pattern of patterns) t.doesNotThrow(() => parseConfig(config(pattern)), pattern)
})

test('a pattern that breaks the checker (10,000 nested groups overflow its stack) is decided without it, never a crash', async (t) => {
  const deep = '^/' + '('.repeat(10_000) + 'a' + ')'.repeat(10_000) + '$'
  const err = t.throws(() => parseConfig(`routes:\n  rewrites:\n    - pattern: "${deep}"\n      rewrite: /x\n`, { file: 'deep.yml' })) as ConfigError
  t.ok(err instanceof ConfigError, 'a config error with its position')
  t.match(err.message, /^deep\.yml:3:16: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically/)
  // An error of the checker's worker thread, had it escaped, would be thrown in this thread once the worker ends.
  await new Promise((resolve) => setTimeout(resolve, 300))
})

test('loading a file with new patterns leaves the event loop free while the worker checks them (a reload keeps serving)', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { loadConfig } = await import('../src/index.js')
  const dir = mkdtempSync(join(tmpdir(), 'navigator-regex-'))
  t.teardown(async () => { const { rmSync } = await import('node:fs'); rmSync(dir, { recursive: true, force: true }) })
  // Patterns no other test uses, so no verdict is kept for them yet: the worker starts and loads recheck (tens of ms).
  const file = join(dir, 'navigator.yml')
  writeFileSync(file, config(`^/loop-free-${process.pid}/(a|b)+$`))
  const bad = join(dir, 'bad.yml')
  writeFileSync(bad, config(`^/loop-free-${process.pid}/(a|a)*$`))
  // The longest time the loop was held, against the whole load: held all along, the longest gap between two ticks of
  // a 1 ms timer is nearly the whole load (the worker's start and recheck's loading, tens of milliseconds).
  const ticks: number[] = []
  const timer = setInterval(() => { ticks.push(performance.now()) }, 1)
  try {
    const started = performance.now()
    await loadConfig(file)
    const times = [started, ...ticks, performance.now()]
    const gaps = times.slice(1).map((at, i) => at - times[i])
    const whole = times.at(-1)! - started
    const held = Math.max(...gaps)
    t.ok(held < whole / 2, `the loop was held at most ${held.toFixed(1)} ms of the load's ${whole.toFixed(1)} ms (${ticks.length} ticks)`)
    // The verdicts kept by the asynchronous check are the ones the synchronous check gives: refused, with its place.
    await t.rejects(loadConfig(bad), /bad\.yml:3:\d+: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically/)
  } finally {
    clearInterval(timer)
  }
})

test('loads at the same time wait for one check of a pattern they share, not a worker each', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { loadConfig } = await import('../src/index.js')
  const { recheckWorkers } = await import('../src/backtracking.js')
  const dir = mkdtempSync(join(tmpdir(), 'navigator-regex-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const files = ['a.yml', 'b.yml', 'c.yml'].map((name) => join(dir, name))
  for (const file of files) writeFileSync(file, config(`^/shared-${process.pid}/(a|a)*$`))
  const before = recheckWorkers.started
  const outcomes = await Promise.allSettled(files.map(async (file) => await loadConfig(file)))
  t.equal(recheckWorkers.started - before, 1, 'one worker for the three loads')
  t.same(outcomes.map((outcome) => outcome.status), ['rejected', 'rejected', 'rejected'], 'each load refuses the pattern')
  for (const outcome of outcomes) t.match((outcome as PromiseRejectedResult).reason, ConfigError)
})

test('a worker that ends without answering: the load goes on at once with safe-regex2\'s check, never waits for its deadline', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { loadConfig } = await import('../src/index.js')
  const { recheckWorkers, RECHECK_TIMEOUT_MS } = await import('../src/backtracking.js')
  const dir = mkdtempSync(join(tmpdir(), 'navigator-regex-'))
  const source = recheckWorkers.source
  t.teardown(() => { recheckWorkers.source = source; rmSync(dir, { recursive: true, force: true }) })
  // As a worker that runs out of memory or fails to start: it exits, and neither posts nor wakes anyone.
  recheckWorkers.source = 'process.exit(1)'
  const overlapping = join(dir, 'overlapping.yml')
  writeFileSync(overlapping, config(`^/dies-${process.pid}/(a|a)*$`))
  const nested = join(dir, 'nested.yml')
  writeFileSync(nested, config(`^/dies-${process.pid}/(a+)+$`))
  const started = Date.now()
  await loadConfig(overlapping)
  t.pass('alternatives that overlap pass the nesting check: loaded')
  await t.rejects(loadConfig(nested), /nested\.yml:3:\d+: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically \(a quantifier inside a repeated group\)/, 'nested quantifiers are refused by it')
  const ms = Date.now() - started
  // The deadline ruled out: recheck's timeout per pattern and 10 s for starting the worker.
  t.ok(ms < 10_000 + RECHECK_TIMEOUT_MS, `both loads in ${ms} ms`)
})
