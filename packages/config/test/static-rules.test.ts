import { test } from 'tap'
import { parseCacheDuration } from '../src/duration.js'
import { ConfigError, parseConfig } from '../src/load.js'

test('cache durations: Go durations, and days, weeks and years of 365 days', async (t) => {
  t.equal(parseCacheDuration('0'), 0)
  t.equal(parseCacheDuration('5m'), 300_000)
  t.equal(parseCacheDuration('1d'), 86_400_000)
  t.equal(parseCacheDuration('1w'), 604_800_000)
  t.equal(parseCacheDuration('1y'), 31_536_000_000)
  t.equal(parseCacheDuration('1.5y'), 47_304_000_000)
  t.equal(parseCacheDuration('2w3d'), 1_468_800_000)
  t.throws(() => parseCacheDuration('1 year'), TypeError)
  t.throws(() => parseCacheDuration('-1d'), TypeError)
})

test('server.static rules are normalised: extensions lower-case without their dot', async (t) => {
  const config = parseConfig([
    'server:',
    '  static:',
    '    allowed_extensions: [CSS, .js]',
    '    try_files: [index.html, .html]',
    '    normalize_trailing_slashes: true',
    '    cache_control:',
    '      default: 0',
    '      default_immutable: false',
    '      overrides:',
    '        - path: /assets/',
    '          max_age: 1y',
    '          immutable: true',
    ''
  ].join('\n'), { env: {} })
  t.same(config.server.staticRules, {
    allowedExtensions: ['css', 'js'],
    tryFiles: ['index.html', '.html'],
    normalizeTrailingSlashes: true,
    cacheControl: { default: { maxAgeMs: 0, immutable: false }, overrides: [{ path: '/assets/', maxAgeMs: 31_536_000_000, immutable: true }] }
  })
})

test('a try_files entry that could leave the folder, a bad max_age and a bad redirect status are errors', async (t) => {
  const bad = [
    'server:\n  static:\n    try_files: ["../x"]\n',
    'server:\n  static:\n    try_files: [".."]\n',
    'server:\n  static:\n    try_files: ["a\\\\b"]\n',
    'server:\n  static:\n    cache_control:\n      overrides:\n        - path: /a/\n          max_age: 1 year\n',
    'server:\n  static:\n    cache_control:\n      overrides:\n        - path: assets\n          max_age: 1h\n',
    'routes:\n  redirects:\n    - from: "^/a"\n      to: /b\n      status: 200\n',
    'routes:\n  rewrites:\n    - pattern: "^/a"\n      rewrite: /b\n      redirect: true\n      status: 404\n'
  ]
  for (const text of bad) t.throws(() => parseConfig(text, { env: {} }), ConfigError, text)
})

test('routes.redirects and redirecting rewrites keep their status; plain rewrites have none', async (t) => {
  const config = parseConfig([
    'routes:',
    '  redirects:',
    '    - from: "^/old/(.*)"',
    '      to: "/new/$1"',
    '  rewrites:',
    '    - pattern: "^/a"',
    '      rewrite: /b',
    '    - pattern: "^/c"',
    '      rewrite: /d',
    '      redirect: true',
    '      status: 308',
    ''
  ].join('\n'), { env: {} })
  t.same(config.routes.redirects.map((rule) => [rule.rewrite, rule.redirectStatus]), [['/new/$1', 302]])
  t.same(config.routes.rewrites.map((rule) => [rule.rewrite, rule.redirectStatus]), [['/b', null], ['/d', 308]])
})
