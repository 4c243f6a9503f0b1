import { test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, parseConfig } from '../src/load.js'
import { parseMemorySize } from '../src/memory-size.js'
import { ProblemCollector } from '../src/problems.js'
import { checkRunAs, lookupGroup, lookupUser } from '../src/run-as.js'
import { parseWithPositions } from '../src/yaml-source.js'

function problems (yaml: string, options: { launchPaths?: boolean, dir?: string } = {}): string[] {
  try {
    parseConfig(yaml, { file: 'navigator.yml', dir: options.dir ?? '/srv/app', env: { PATH: process.env.PATH }, launchPaths: options.launchPaths })
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n')
    throw err
  }
  return []
}

test('max_size, user, group, memory_limit, start_delay, port_env_var and track_websockets, and the tenant overrides', async (t) => {
  const config = parseConfig(`
applications:
  max_size: 3
  user: rails
  group: www
  memory_limit: 512M
  start_delay: 1500ms
  port_env_var: SERVER_PORT
  track_websockets: false
  tenants:
    - name: a
      path: /a
    - name: b
      path: /b
      health_check: /healthz
      startup_timeout: 90s
      track_websockets: true
      memory_limit: 1.5G
      user: app
      group: app
`, { dir: '/srv/app', env: {} })
  const { applications } = config
  t.match(applications, { maxSize: 3, user: 'rails', group: 'www', memoryLimit: 512 * 1024 ** 2, startDelayMs: 1500, portEnvVar: 'SERVER_PORT', trackWebSockets: false })
  t.match(applications.tenants[0], { healthCheck: null, startupTimeoutMs: null, trackWebSockets: null, memoryLimit: null, user: null, group: null }, 'no override: null')
  t.match(applications.tenants[1], { healthCheck: '/healthz', startupTimeoutMs: 90_000, trackWebSockets: true, memoryLimit: 1.5 * 1024 ** 3, user: 'app', group: 'app' })

  const defaults = parseConfig('applications: {}\n', { env: {} }).applications
  t.match(defaults, { maxSize: 0, user: null, group: null, memoryLimit: null, startDelayMs: 0, portEnvVar: 'PORT', trackWebSockets: true })
})

test('memory sizes: K, M, G and T are 1024-based with or without i, a trailing B is allowed, a number is bytes', async (t) => {
  t.equal(parseMemorySize('512M'), 512 * 1024 ** 2)
  t.equal(parseMemorySize('256Mi'), 256 * 1024 ** 2)
  t.equal(parseMemorySize('2048MB'), 2048 * 1024 ** 2)
  t.equal(parseMemorySize('1G'), 1024 ** 3)
  t.equal(parseMemorySize('1.5g'), 1.5 * 1024 ** 3)
  t.equal(parseMemorySize('1Ti'), 1024 ** 4)
  t.equal(parseMemorySize('64k'), 64 * 1024)
  t.equal(parseMemorySize('1000000'), 1_000_000)
  t.equal(parseMemorySize('1 G'), 1024 ** 3)
  for (const bad of ['', 'G', '1X', '-1G', '1.G', '1GG', 'lots']) t.equal(parseMemorySize(bad), null, bad)
  t.equal(parseConfig('applications: { memory_limit: 1048576 }\n', { env: {} }).applications.memoryLimit, 1_048_576, 'an integer in YAML is bytes')
})

test('bad values are reported at their positions with what to write instead', async (t) => {
  const found = problems(`applications:
  max_size: -1
  memory_limit: 5 gigs
  port_env_var: 1PORT
  track_websockets: maybe
  tenants:
    - name: a
      path: /a
      health_check: up
      startup_timeout: soon
      memory_limit: 0
      user: ""
`)
  t.match(found.join('\n'), /navigator\.yml:2:\d+: applications\.max_size: must be at least 0/)
  t.match(found.join('\n'), /navigator\.yml:3:\d+: applications\.memory_limit: must be a memory size such as 512M, 1G, 1\.5G or 256Mi, or a number of bytes/)
  t.match(found.join('\n'), /navigator\.yml:4:\d+: applications\.port_env_var: must be an environment variable name such as PORT or SERVER_PORT/)
  t.match(found.join('\n'), /navigator\.yml:5:\d+: applications\.track_websockets: must be true or false/)
  t.match(found.join('\n'), /navigator\.yml:9:\d+: applications\.tenants\.0\.health_check: must be a URL path starting with "\/"/)
  t.match(found.join('\n'), /navigator\.yml:10:\d+: applications\.tenants\.0\.startup_timeout: must be a Go duration/)
  t.match(found.join('\n'), /navigator\.yml:11:\d+: applications\.tenants\.0\.memory_limit: must be a memory size/)
  t.match(found.join('\n'), /navigator\.yml:12:\d+: applications\.tenants\.0\.user: must not be empty/)
})

test('a memory_limit of 0 is refused: it would kill the tenant at once', async (t) => {
  t.match(problems('applications:\n  memory_limit: 0M\n'), [/navigator\.yml:2:\d+: applications\.memory_limit: must be more than 0 .*write a size such as 512M, or leave memory_limit out/])
})

test('start_delay must be shorter than the startup timeout, the applications\' one and each tenant\'s own', async (t) => {
  const found = problems(`applications:
  start_delay: 10s
  startup_timeout: 5s
  tenants:
    - { name: a, path: /a }
    - { name: b, path: /b, startup_timeout: 30s }
    - { name: c, path: /c, startup_timeout: 2s }
`)
  t.match(found, [/navigator\.yml:2:\d+: applications\.start_delay: applications\.start_delay must be shorter than the startup timeout.*shorten start_delay or lengthen startup_timeout/, /navigator\.yml:7:\d+: applications\.tenants\.2\.startup_timeout: applications\.start_delay must be shorter/])
  t.equal(found.length, 2, 'tenant b, with a longer startup_timeout of its own, is fine')
  t.same(problems('applications:\n  start_delay: 2s\n  startup_timeout: 5s\n'), [])
})

test('user and group at --check: without root each is a problem at its position; as root an unknown name is', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'navigator-run-as-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const yaml = `applications:
  command: node
  user: nobody
  tenants:
    - name: a
      path: /a
      group: no-such-group-navigator
`
  const found = problems(yaml, { launchPaths: true, dir })
  if (process.getuid?.() === 0) {
    t.same(found, ['navigator.yml:7:14: applications.tenants.0.group: there is no group `no-such-group-navigator` on this system: create it (groupadd) or name an existing one'], 'nobody exists; the group does not')
  } else {
    t.match(found, [
      /navigator\.yml:3:9: applications\.user: user `nobody`: user\/group need Navigator to run as root; remove them or run as root/,
      /navigator\.yml:7:14: applications\.tenants\.0\.group: group `no-such-group-navigator`: user\/group need Navigator to run as root/
    ])
  }
  t.same(problems(yaml, { dir }), [], 'a plain load (no --check, start or reload) does not look at the system')
})

test('checkRunAs names every key without root, whoever runs the test', async (t) => {
  const yaml = 'applications:\n  group: nogroup\n  tenants:\n    - { name: a, path: /a, user: nobody }\n'
  const config = parseConfig(yaml, { env: {} })
  const collector = new ProblemCollector('navigator.yml', () => parseWithPositions(yaml))
  checkRunAs(config.applications, collector, false)
  t.same(collector.problems.map((problem) => `${problem.line}:${problem.column} ${problem.path}: ${problem.message}`), [
    '2:10 applications.group: group `nogroup`: user/group need Navigator to run as root; remove them or run as root',
    '4:34 applications.tenants.0.user: user `nobody`: user/group need Navigator to run as root; remove them or run as root'
  ])
})

test('user and group names resolve through the system, numbers too', async (t) => {
  t.match(lookupUser('root'), { uid: 0, gid: 0 })
  t.match(lookupUser('0'), { uid: 0 })
  t.equal(lookupUser('no-such-user-navigator'), null)
  t.equal(lookupGroup('root'), 0)
  t.equal(lookupGroup('no-such-group-navigator'), null)
})
