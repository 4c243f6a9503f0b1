import { test } from 'tap'
import { ConfigError, parseConfig } from '../src/index.js'

// A regular expression that backtracks catastrophically (issue 18, item 8) is a config error at --check and at
// start, never a server that freezes on one long path.

const config = (pattern: string): string => `routes:\n  rewrites:\n    - pattern: ${JSON.stringify(pattern)}\n      rewrite: "/x"\n  fly:\n    replay:\n      - path: ${JSON.stringify(pattern)}\n        region: ord\n`

test('nested repetition in a rewrite or a replay rule is reported, with its position and what to write instead', async (t) => {
  for (const pattern of ['^/(a+)+$', '^/(x*)*y', '^/((ab)*)+$']) {
    const err = t.throws(() => parseConfig(config(pattern), { file: 'navigator.yml' })) as ConfigError
    t.ok(err instanceof ConfigError, pattern)
    t.equal(err.problems.length, 2, `${pattern}: both places`)
    t.match(err.message, /navigator\.yml:3:\d+: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically/)
    t.match(err.message, /navigator\.yml:7:\d+: routes\.fly\.replay\.0\.path: this pattern can backtrack catastrophically/)
    t.match(err.message, /write it without the nested repetition/)
  }
})

test('ordinary patterns, one repetition deep, load', async (t) => {
  for (const pattern of ['^/api/(.*)', '^/assets/[a-f0-9]+\\.css$', '^/(users|posts)/\\d+$']) {
    t.doesNotThrow(() => parseConfig(config(pattern)), pattern)
  }
})
