import { test } from 'tap'
import { parseConfig } from '../src/index.js'
import { problemLines as problems } from './helpers.js'

// server.metrics: off unless the section is there; its path, its own listener and the addresses allowed, checked.

test('an empty metrics section turns them on at /metrics, on the main port, for this computer only', async (t) => {
  const config = parseConfig('server:\n  metrics: {}\n', { dir: '/srv/app', env: {} })
  t.same(config.server.metrics, {
    path: '/metrics',
    listen: null,
    allow: [{ address: '127.0.0.0', prefix: 8, family: 'ipv4' }, { address: '::1', prefix: 128, family: 'ipv6' }]
  })
  t.equal(parseConfig('server:\n  metrics:\n', { dir: '/srv/app', env: {} }).server.metrics, null, 'a key without a value: off')
})

test('a listener of their own, a path and allowed blocks are read as written', async (t) => {
  const config = parseConfig('server:\n  listen: 3000\n  metrics:\n    path: /internal/metrics\n    listen: "[::]:9091"\n    allow: [fdaa::/16, 10.0.0.7]\n', { dir: '/srv/app', env: {} })
  t.same(config.server.metrics, {
    path: '/internal/metrics',
    listen: { host: '::', port: 9091 },
    allow: [{ address: 'fdaa::', prefix: 16, family: 'ipv6' }, { address: '10.0.0.7', prefix: 32, family: 'ipv4' }]
  })
})

test('a bad path, the main port, the health check path or a bad block are each a problem at their key', async (t) => {
  t.same(problems('server:\n  listen: 3000\n  health_check: /up\n  metrics:\n    path: /up\n    listen: 3000\n    allow: [10.0.0.0/33, example.com]\n'), [
    'server.metrics.path: /up is server.health_check already: choose another path for the metrics',
    'server.metrics.listen: port 3000 is server.listen\'s: give the metrics a port of their own, or leave listen out to answer them on the main port',
    'server.metrics.allow.0: "10.0.0.0/33": the prefix length must be 0 to 32',
    'server.metrics.allow.1: "example.com" is not an address block: write an IP address with an optional prefix length, such as 10.0.0.0/8 or fdaa::/16'
  ])
  t.match(problems('server:\n  metrics:\n    path: metrics\n'), [/^server\.metrics\.path: must be a URL path/])
  t.match(problems('server:\n  metrics:\n    unknown: 1\n'), [/^server\.metrics/])
})

test('debug_header of sticky sessions is off unless set', async (t) => {
  t.equal(parseConfig('routes:\n  fly:\n    sticky_sessions:\n      debug_header: true\n', { dir: '/srv/app', env: {} }).routes.fly.stickySessions.debugHeader, true)
})
