import { test } from 'tap'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { loadConfig, parseConfig } from '../src/load.js'
import { ConfigError } from '../src/problems.js'
import type { ConfigProblem } from '../src/types.js'
import { problemsOf } from './helpers.js'

const summary = (problems: ConfigProblem[]): Array<[string, number, number]> => problems.map((p) => [p.path, p.line, p.column])

test('a config with five different mistakes reports all five, each with line and column', async (t) => {
  const yaml = [
    'server:', //                                   1
    '  listen: 3000', //                             2
    '  shutdown_timout: 30s', //                     3  unknown key
    'routes:', //                                    4
    '  rewrites:', //                                5
    '    - pattern: "^/api/(.*"', //                 6  bad regex
    '      rewrite: "/$1"', //                       7
    '  fly:', //                                     8
    '    sticky_sessions:', //                       9
    '      cookie_max_age: 2 hours', //             10  bad duration
    'applications:', //                             11
    '  tenants:', //                                12
    '    - name: a', //                             13
    '      path: /a', //                            14
    '    - name: b', //                             15
    '      path: /a/', //                           16  duplicate path
    '      start: later' //                         17  bad enum
  ].join('\n')
  const problems = problemsOf(t, yaml)
  t.same(summary(problems), [
    ['server.shutdown_timout', 3, 3],
    ['routes.rewrites.0.pattern', 6, 16],
    ['routes.fly.sticky_sessions.cookie_max_age', 10, 23],
    ['applications.tenants.1.path', 16, 13],
    ['applications.tenants.1.start', 17, 14]
  ])
  t.match(problems[0].message, 'did you mean `shutdown_timeout`?')
  t.match(problems[1].message, /regular expression/i)
  t.match(problems[2].message, /Go duration/)
  t.match(problems[3].message, /duplicate tenant path `\/a`/)
  t.match(problems[4].message, /lazy, eager/)
})

test('the error message is one line per problem, file:line:column: path: message, sorted by position', async (t) => {
  const yaml = 'applications:\n  start_port: high\nserver:\n  listen: nowhere\n'
  const error = t.throws(() => parseConfig(yaml, { file: 'conf/nav.yml', env: {} })) as ConfigError
  t.equal(error.name, 'ConfigError')
  t.equal(error.code, 'NAV_CONFIG_INVALID')
  const lines = error.message.split('\n')
  t.equal(lines.length, 2)
  t.match(lines[0], /^conf\/nav\.yml:2:15: applications\.start_port: must be an integer$/)
  t.match(lines[1], /^conf\/nav\.yml:4:11: server\.listen: "nowhere" is not a listen address/)
})

test('YAML syntax errors are reported with their positions', async (t) => {
  const problems = problemsOf(t, 'server:\n  listen: 3000\n  listen: 4000\nroutes: [unclosed\n')
  t.ok(problems.length >= 2)
  t.same(problems.map((p) => p.line).slice(0, 1), [3], 'the duplicate key first')
  t.ok(problems.every((p) => p.line >= 1 && p.column >= 1))
  t.ok(problems.every((p) => p.path === ''))
})

test('an unknown key points at the key and suggests the closest valid key at its level', async (t) => {
  const problems = problemsOf(t, 'routes:\n  fly:\n    sticky_sessions:\n      cookie_nmae: x\n      zzzzzzzzzzz: 1\n')
  t.same(summary(problems), [
    ['routes.fly.sticky_sessions.cookie_nmae', 4, 7],
    ['routes.fly.sticky_sessions.zzzzzzzzzzz', 5, 7]
  ])
  t.match(problems[0].message, 'unknown key `cookie_nmae`; did you mean `cookie_name`?')
  t.match(problems[1].message, /unknown key `zzzzzzzzzzz`; valid keys here: enabled, cookie_name/, 'no absurd suggestion')
})

test('a missing required key points at its parent mapping', async (t) => {
  const problems = problemsOf(t, 'applications:\n  tenants:\n    - name: a\n      path: /a\n    - name: b\n')
  t.same(summary(problems), [['applications.tenants.1.path', 5, 7]])
  t.match(problems[0].message, 'missing required key `path`')
})

test('wrong types, bad listen, ports and statuses are problems', async (t) => {
  const problems = problemsOf(t, [
    'server:',
    '  listen: "host:99999"',
    '  static: public',
    'routes:',
    '  fly:',
    '    replay:',
    '      - { path: "^/", region: ord, status: 200 }',
    '    sticky_sessions:',
    '      enabled: "yes"',
    'applications:',
    '  standalone_servers:',
    '    - { name: s, match_path: /s, command: x, port: 70000 }'
  ].join('\n'))
  t.same(summary(problems), [
    ['server.listen', 2, 11],
    ['server.static', 3, 11],
    ['routes.fly.replay.0.status', 7, 44],
    ['routes.fly.sticky_sessions.enabled', 9, 16],
    ['applications.standalone_servers.0.port', 12, 52]
  ])
  t.match(problems[1].message, 'must be a mapping')
  t.match(problems[2].message, 'at least 300')
  t.match(problems[3].message, 'must be true or false')
  t.match(problems[4].message, 'at most 65535')
})

test('replay rules need exactly one valid target', async (t) => {
  const problems = problemsOf(t, [
    'routes:',
    '  fly:',
    '    replay:',
    '      - path: "^/a"',
    '      - path: "^/b"',
    '        region: ord',
    '        machine: abc',
    '      - { path: "^/c", machine: "Not_An_Id" }',
    '      - { path: "^/d", region: "ord, s jc" }',
    '      - { path: "^/e", app: "My App", methods: ["GE T"] }'
  ].join('\n'))
  t.same(summary(problems), [
    ['routes.fly.replay.0', 4, 9],
    ['routes.fly.replay.1.machine', 7, 9],
    ['routes.fly.replay.2.machine', 8, 33],
    ['routes.fly.replay.3.region', 9, 32],
    ['routes.fly.replay.4.app', 10, 29],
    ['routes.fly.replay.4.methods.0', 10, 49]
  ])
  t.match(problems[0].message, 'exactly one target')
  t.match(problems[1].message, 'region and machine')
})

test('sticky session rules: SameSite=None without Secure, bad paths, peers, cookie name, max age', async (t) => {
  const problems = problemsOf(t, [
    'routes:',
    '  fly:',
    '    sticky_sessions:',
    '      cookie_name: "bad name"',
    '      cookie_max_age: 500ms',
    '      cookie_samesite: none',
    '      paths: ["/ok", "app/*", "/a/*/b"]',
    '      peers:',
    '        Machine_1: http://127.0.0.1:1',
    '        m2: ftp://127.0.0.1:2',
    '        m3: http://127.0.0.1:3/path',
    '        m4: http://127.0.0.1:4'
  ].join('\n'))
  t.same(summary(problems), [
    ['routes.fly.sticky_sessions.cookie_name', 4, 20],
    ['routes.fly.sticky_sessions.cookie_max_age', 5, 23],
    ['routes.fly.sticky_sessions.cookie_samesite', 6, 24],
    ['routes.fly.sticky_sessions.paths.1', 7, 22],
    ['routes.fly.sticky_sessions.paths.2', 7, 31],
    ['routes.fly.sticky_sessions.peers.Machine_1', 9, 9],
    ['routes.fly.sticky_sessions.peers.m2', 10, 13],
    ['routes.fly.sticky_sessions.peers.m3', 11, 13]
  ])
  t.match(problems[2].message, 'cookie_secure: true')
  const secure = parseConfig('routes:\n  fly:\n    sticky_sessions:\n      cookie_samesite: None\n      cookie_secure: true\n', { env: {} })
  t.equal(secure.routes.fly.stickySessions.cookieSameSite, 'None', 'None is fine with Secure')
})

test('tenant names and paths must be unique and paths must start with "/"', async (t) => {
  const problems = problemsOf(t, [
    'applications:',
    '  tenants:',
    '    - { name: a, path: /a }',
    '    - { name: a, path: b }',
    '    - { name: c, path: /a }',
    '  standalone_servers:',
    '    - { name: s, match_path: cable, command: x, port: 1 }',
    '    - { name: s, match_path: /cable, command: x, port: 2 }'
  ].join('\n'))
  t.same(summary(problems), [
    ['applications.tenants.1.name', 4, 15],
    ['applications.tenants.1.path', 4, 24],
    ['applications.tenants.2.path', 5, 24],
    ['applications.standalone_servers.0.match_path', 7, 30],
    ['applications.standalone_servers.1.name', 8, 15]
  ])
})

test('a secret from an unset variable is reported without echoing anything secret', async (t) => {
  const problems = problemsOf(t, 'routes:\n  fly:\n    sticky_sessions:\n      secret: ["${KEY_A}", ""]\n', { env: { KEY_B: 'x' } })
  t.same(summary(problems), [
    ['routes.fly.sticky_sessions.secret', 4, 15],
    ['routes.fly.sticky_sessions.secret.0', 4, 16]
  ])
  t.match(problems[0].message, 'non-empty', 'the empty secret')
  t.match(problems[1].message, '${KEY_A} is not set in the environment')
  t.notMatch(problems.map((p) => p.message).join('\n'), /"x"/)
})

test('loadConfig reports a missing file as a ConfigError', async (t) => {
  const file = join(tmpdir(), 'navigator-does-not-exist.yml')
  await t.rejects(loadConfig(file, { env: {} }), ConfigError)
  await t.rejects(loadConfig(file, { env: {} }), { message: `${file}:1:1: (document): cannot read the config file (ENOENT)` })
})

test('a document that is not a mapping is a problem at the top', async (t) => {
  const problems = problemsOf(t, '- a\n- b\n')
  t.same(summary(problems), [['', 1, 1]])
  t.match(problems[0].message, 'must be a mapping')
})

test('a known key at the wrong level says where it belongs', async (t) => {
  const problems = problemsOf(t, 'routes:\n  sticky_sessions:\n    enabled: true\napplications:\n  - name: a\n')
  t.same(summary(problems), [['routes.sticky_sessions', 2, 3], ['applications', 5, 3]])
  t.match(problems[0].message, 'unknown key `sticky_sessions` here; it belongs under `routes.fly`')
  t.match(problems[1].message, 'must be a mapping')
})
