import { test } from 'tap'
import { parseConfig } from '../src/load.js'
import { ConfigError } from '../src/problems.js'

// routes.reverse_proxies, server.health_check's object form and maintenance: their normalised form and their problems.

function problemsOf (t: Tap.Test, yaml: string): Array<[string, string]> {
  try {
    parseConfig(yaml, { file: 'navigator.yml', env: {} })
  } catch (err) {
    t.type(err, ConfigError)
    return (err as ConfigError).problems.map((problem) => [problem.path, problem.message])
  }
  t.fail('expected a ConfigError')
  return []
}

test('reverse proxies, the health check object and maintenance are normalised as written', async (t) => {
  const config = parseConfig([
    'server:',
    '  health_check:',
    '    path: /up',
    '    response: { status: 200, body: OK, headers: { Content-Type: text/plain } }',
    'routes:',
    '  reverse_proxies:',
    '    - name: users',
    '      path: "^/users/([0-9]+)$"',
    '      target: https://api.example.com/v1/user/$1',
    '      headers: { X-Real-IP: $remote_addr }',
    '    - prefix: /cable',
    '      target: http://localhost:28080',
    '      websocket: true',
    '      strip_path: true',
    '      response_headers: { X-Frame-Options: DENY }',
    'maintenance:',
    '  enabled: true',
    '  page: /503.html'
  ].join('\n'), { dir: '/srv/app', env: {} })
  t.same(config.server.healthCheck, '/up')
  t.same(config.server.healthCheckResponse, { status: 200, body: 'OK', headers: { 'content-type': 'text/plain' } })
  t.same(config.maintenance, { enabled: true })
  t.equal(config.server.maintenancePage, '/srv/app/public/503.html', '"/503.html" is a file of public_dir, as in Go')
  const [users, cable] = config.routes.reverseProxies
  t.match(users, { name: 'users', prefix: null, target: 'https://api.example.com/v1/user/$1', stripPath: false, headers: { 'x-real-ip': '$remote_addr' }, websocket: false })
  t.equal(users.pattern?.source, '^\\/users\\/([0-9]+)$')
  t.match(cable, { name: 'routes.reverse_proxies.1', pattern: null, prefix: '/cable', stripPath: true, responseHeaders: { 'x-frame-options': 'DENY' }, websocket: true })
  t.equal(parseConfig('server:\n  health_check:\n    path: /up\n', { env: {} }).server.healthCheckResponse, null, 'without response: proxied')
  t.match(parseConfig('server:\n  health_check: /up\n', { env: {} }).server.healthCheckResponse, { status: 200, body: 'OK\n' }, 'a path alone: 200 OK')
})

test('a reverse proxy that cannot work is a problem at its key', async (t) => {
  const problems = problemsOf(t, [
    'server:',
    '  maintenance_page: down.html',
    '  health_check:',
    '    path: up',
    'routes:',
    '  reverse_proxies:',
    '    - { path: "^/a", prefix: /a, target: "http://a" }',
    '    - { target: "http://a" }',
    '    - { prefix: /b, target: "ftp://b" }',
    '    - { path: "^/c/(.*)", target: "http://$1.example.com/" }',
    '    - { prefix: /d, target: "http://d/$1" }',
    '    - { prefix: /e, target: "https://e", websocket: true }',
    '    - { prefix: /f, target: "http://f", headers: { X-Bad: "a\\r\\nInjected: yes" } }',
    '    - { prefix: g, target: "http://g?x=1" }',
    'maintenance:',
    '  page: /503.html'
  ].join('\n'))
  t.match(problems, [
    ['server.health_check.path', /must be a URL path/],
    ['routes.reverse_proxies.0', /exactly one of path/],
    ['routes.reverse_proxies.1', /exactly one of path/],
    ['routes.reverse_proxies.2.target', /http:\/\/ or https:\/\//],
    ['routes.reverse_proxies.3.target', /never in its host/],
    ['routes.reverse_proxies.4.target', /need a path/],
    ['routes.reverse_proxies.5.target', /needs an http:\/\/ target/],
    ['routes.reverse_proxies.6.headers.X-Bad', /not a header Node can send/],
    ['routes.reverse_proxies.7.prefix', /must start with "\/"/],
    ['routes.reverse_proxies.7.target', /no query string/],
    ['maintenance.page', /server.maintenance_page is given too/]
  ])
  t.equal(problems.length, 11)
})
