import { test } from 'tap'
import { parseConfig } from '../src/load.js'
import { DEFAULT_MAX_REPLAY_BODY, DEFAULT_PEER_WRITE_TIMEOUT } from '../src/defaults.js'
import type { ConfigProblem } from '../src/types.js'
import { problemsOf } from './helpers.js'

// The keys of "sticky sessions that hold on real Fly": the replay limit, the peer write timeout, the direct proxy
// mode and its Flycast address, the sticky header, and the cookie's Domain, Partitioned and session lifetime.

const sticky = (...lines: string[]): string => ['routes:', '  fly:', '    sticky_sessions:', ...lines.map((line) => `      ${line}`)].join('\n')
// Each problem's file is part of what is compared: a problem of navigator.yml shows as its key path alone.
const summary = (problems: ConfigProblem[]): Array<[string, number, number]> =>
  problems.map((p) => [p.file === 'navigator.yml' ? p.path : `${p.file}: ${p.path}`, p.line, p.column])

test('the replay limit is 1 MB (1,000,000 bytes) and the peer write timeout 5s unless set', async (t) => {
  t.equal(DEFAULT_MAX_REPLAY_BODY, 1_000_000)
  t.equal(DEFAULT_PEER_WRITE_TIMEOUT, '5s')
  const defaults = parseConfig('', { env: {} }).routes.fly
  t.equal(defaults.maxReplayBody, 1_000_000)
  t.equal(defaults.peerWriteTimeoutMs, 5_000)
  const set = parseConfig('routes:\n  fly:\n    max_replay_body: 65536\n    peer_write_timeout: 1500ms\n', { env: {} }).routes.fly
  t.equal(set.maxReplayBody, 65_536)
  t.equal(set.peerWriteTimeoutMs, 1_500)
  t.equal(parseConfig('routes:\n  fly:\n    max_replay_body: 0\n', { env: {} }).routes.fly.maxReplayBody, 0, '0: only requests without a body are replayed')
})

test('a bad replay limit or peer write timeout is reported at its value', async (t) => {
  const problems = problemsOf(t, 'routes:\n  fly:\n    max_replay_body: -1\n    peer_write_timeout: 0\n')
  t.same(summary(problems), [['routes.fly.max_replay_body', 3, 22], ['routes.fly.peer_write_timeout', 4, 25]])
  t.match(problems[0].message, 'at least 0')
  t.match(problems[1].message, 'longer than 0')
  const words = problemsOf(t, 'routes:\n  fly:\n    max_replay_body: 1MB\n    peer_write_timeout: 5 seconds\n')
  t.same(summary(words), [['routes.fly.max_replay_body', 3, 22], ['routes.fly.peer_write_timeout', 4, 25]])
  t.match(words[0].message, 'must be an integer')
  t.match(words[1].message, 'Go duration')

  // Past 2^53 a byte count is no longer exact: refused by --check rather than at start by the sticky plugin.
  const huge = problemsOf(t, 'routes:\n  fly:\n    max_replay_body: 99999999999999999999\n')
  t.same(summary(huge), [['routes.fly.max_replay_body', 3, 22]])
  t.match(huge[0].message, String(Number.MAX_SAFE_INTEGER))
})

test('direct_proxy, flycast_port and flycast_url load as given; the URL is kept as its origin', async (t) => {
  const defaults = parseConfig(sticky('enabled: true'), { env: {} }).routes.fly.stickySessions
  t.equal(defaults.directProxy, 'vm')
  t.equal(defaults.flycastPort, null, 'null: the listen port')
  t.equal(defaults.flycastUrl, null)
  const set = parseConfig(sticky('direct_proxy: flycast', 'flycast_port: 8080', 'flycast_url: "http://127.0.0.1:4555/"'), { env: {} }).routes.fly.stickySessions
  t.equal(set.directProxy, 'flycast')
  t.equal(set.flycastPort, 8080)
  t.equal(set.flycastUrl, 'http://127.0.0.1:4555')
})

test('a bad direct_proxy, flycast_port or flycast_url is reported with its position', async (t) => {
  const problems = problemsOf(t, sticky('direct_proxy: 6pn', 'flycast_port: 70000', 'flycast_url: "my-app.flycast:3000/x"'))
  t.same(summary(problems), [
    ['routes.fly.sticky_sessions.direct_proxy', 4, 21],
    ['routes.fly.sticky_sessions.flycast_port', 5, 21],
    ['routes.fly.sticky_sessions.flycast_url', 6, 20]
  ])
  t.match(problems[0].message, 'vm, flycast')
  t.match(problems[1].message, 'at most 65535')
  t.match(problems[2].message, 'base URL such as http://')
})

test('header_name is a header name of the user\'s own, kept lower-case', async (t) => {
  t.equal(parseConfig(sticky('header_name: X-Machine'), { env: {} }).routes.fly.stickySessions.headerName, 'x-machine')
  t.equal(parseConfig(sticky('enabled: true'), { env: {} }).routes.fly.stickySessions.headerName, null)
  const problems = problemsOf(t, sticky('header_name: "x machine"'))
  t.same(summary(problems), [['routes.fly.sticky_sessions.header_name', 4, 20]])
  t.match(problems[0].message, 'not a header name')
  for (const reserved of ['Cookie', 'fly-force-instance-id', 'X-Navigator-Via', 'x-forwarded-for', 'Authorization', 'content-length']) {
    const [problem] = problemsOf(t, sticky(`header_name: ${reserved}`))
    t.equal(problem.path, 'routes.fly.sticky_sessions.header_name', reserved)
    t.match(problem.message, 'choose a name of your own', reserved)
  }
})

test('cookie_domain, cookie_partitioned and a cookie_max_age of 0 (a session cookie) load', async (t) => {
  const set = parseConfig(sticky('cookie_domain: .example.com', 'cookie_partitioned: true', 'cookie_secure: true', 'cookie_samesite: None', 'cookie_max_age: 0'), { env: {} }).routes.fly.stickySessions
  t.equal(set.cookieDomain, '.example.com')
  t.equal(set.cookiePartitioned, true)
  t.equal(set.cookieMaxAgeMs, 0)
  t.equal(parseConfig(sticky('cookie_max_age: 0s'), { env: {} }).routes.fly.stickySessions.cookieMaxAgeMs, 0, '"0s" too')
  const defaults = parseConfig(sticky('enabled: true'), { env: {} }).routes.fly.stickySessions
  t.equal(defaults.cookieDomain, null)
  t.equal(defaults.cookiePartitioned, false)
})

test('cookie attribute mistakes are config errors with file:line:column that say what to write instead', async (t) => {
  const problems = problemsOf(t, sticky(
    'cookie_samesite: None', //        line 4
    'cookie_partitioned: true', //     line 5
    'cookie_domain: "https://example.com"', // line 6
    'cookie_max_age: 300ms' //          line 7
  ))
  t.same(summary(problems), [
    ['routes.fly.sticky_sessions.cookie_samesite', 4, 24],
    ['routes.fly.sticky_sessions.cookie_partitioned', 5, 27],
    ['routes.fly.sticky_sessions.cookie_domain', 6, 22],
    ['routes.fly.sticky_sessions.cookie_max_age', 7, 23]
  ])
  t.match(problems[0].message, 'add `cookie_secure: true`, or write `cookie_samesite: Lax`')
  t.match(problems[1].message, 'add `cookie_secure: true`, or remove `cookie_partitioned`')
  t.match(problems[2].message, 'write a host such as example.com')
  t.match(problems[3].message, 'must be 0 (a session cookie) or at least 1s')

  const [laxPartitioned] = problemsOf(t, sticky('cookie_secure: true', 'cookie_partitioned: true'))
  t.equal(laxPartitioned.path, 'routes.fly.sticky_sessions.cookie_partitioned')
  t.match(laxPartitioned.message, 'add `cookie_samesite: None`, or remove `cookie_partitioned`')
  const [neither] = problemsOf(t, sticky('cookie_partitioned: true'))
  t.match(neither.message, 'add `cookie_secure: true` and `cookie_samesite: None`')
})
