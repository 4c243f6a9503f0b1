import { test } from 'tap'
import { parseConfig } from '../src/index.js'
import { problemLines as problems } from './helpers.js'

// server.status: off unless the section is there; its path (and its JSON twin) none of Navigator's other own paths,
// and the addresses allowed, checked as the metrics' are.

const OPTIONS = { dir: '/srv/app', env: {} }

test('an empty status section turns the page on at /navigator/status, for this computer only', async (t) => {
  t.same(parseConfig('server:\n  status: {}\n', OPTIONS).server.status, {
    path: '/navigator/status',
    allow: [{ address: '127.0.0.0', prefix: 8, family: 'ipv4' }, { address: '::1', prefix: 128, family: 'ipv6' }]
  })
  t.equal(parseConfig('', OPTIONS).server.status, null, 'absent: off')
  t.equal(parseConfig('server:\n  status:\n', OPTIONS).server.status, null, 'a key without a value: off')
})

test('a path and allowed blocks are read as written', async (t) => {
  t.same(parseConfig('server:\n  status:\n    path: /internal/status\n    allow: [fdaa::/16, 10.0.0.7]\n', OPTIONS).server.status, {
    path: '/internal/status',
    allow: [{ address: 'fdaa::', prefix: 16, family: 'ipv6' }, { address: '10.0.0.7', prefix: 32, family: 'ipv4' }]
  })
})

test('the health check or metrics path, for the page or its JSON, a bad path or a bad block are each a problem', async (t) => {
  t.same(problems('server:\n  health_check: /up\n  status:\n    path: /up\n'), [
    'server.status.path: /up is server.health_check already: choose another path for the status page'
  ])
  t.same(problems('server:\n  metrics: {}\n  status:\n    path: /metrics\n'), [
    'server.status.path: /metrics is server.metrics.path already: choose another path for the status page'
  ])
  t.same(problems('server:\n  metrics:\n    path: /s.json\n  status:\n    path: /s\n    allow: [example.com]\n'), [
    'server.status.path: /s.json (the page\'s JSON) is server.metrics.path already: choose another path for the status page',
    'server.status.allow.0: "example.com" is not an address block: write an IP address with an optional prefix length, such as 10.0.0.0/8 or fdaa::/16'
  ])
  t.match(problems('server:\n  status:\n    path: status\n'), [/^server\.status\.path: must be a URL path/])
  t.match(problems('server:\n  status:\n    listen: 9000\n'), [/^server\.status/], 'no listener of its own')
})
