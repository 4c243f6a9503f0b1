import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { test } from 'tap'
import { FIXTURES, freePort, runCli, tempDir } from './helpers.js'

test('--check on a config with five mistakes exits 2 and prints each one with its line and column', async (t) => {
  const dir = tempDir({
    'navigator.yml': [
      'server:',
      '  listen: 3000',
      '  shutdown_timeout: 30 seconds',
      '  helth_check: /up',
      'routes:',
      '  fly:',
      '    sticky_sessions:',
      '      cookie_samesite: Sometimes',
      '      cookie_max_age: forever',
      'applications:',
      '  start_port: many',
      ''
    ].join('\n')
  })
  const file = join(dir, 'navigator.yml')
  const { code, stderr } = await runCli(['--check', file])
  t.equal(code, 2)
  const lines = stderr.trim().split('\n')
  t.equal(lines.length, 5, stderr)
  for (const line of lines) t.match(line, /^.+navigator\.yml:\d+:\d+: \S+: .+/)
  t.match(stderr, /:3:\d+: server\.shutdown_timeout/)
  t.match(stderr, /:4:\d+: server\.helth_check: .*health_check/)
  t.match(stderr, /:8:\d+: routes\.fly\.sticky_sessions\.cookie_samesite/)
  t.match(stderr, /:9:\d+: routes\.fly\.sticky_sessions\.cookie_max_age/)
  t.match(stderr, /:11:\d+: applications\.start_port/)
})

test('--check on a valid config exits 0', async (t) => {
  const dir = tempDir({ 'navigator.yml': 'server:\n  listen: 3000\n' })
  const { code, stdout, stderr } = await runCli(['--check', join(dir, 'navigator.yml')])
  t.equal(code, 0, stderr)
  t.match(stdout, /ok/)
})

test('a config error at start prints every problem, exits 2 and serves nothing', async (t) => {
  const dir = tempDir({ 'navigator.yml': 'server:\n  listen: nowhere\n  shutdown_timeout: 1 week\n' })
  const { code, stdout, stderr } = await runCli([join(dir, 'navigator.yml')])
  t.equal(code, 2)
  t.equal(stderr.trim().split('\n').length, 2, stderr)
  t.notMatch(stdout, /listening/)
})

test('a missing config file is a config error (exit 2)', async (t) => {
  const dir = tempDir()
  const { code, stderr } = await runCli([join(dir, 'absent.yml')])
  t.equal(code, 2)
  t.match(stderr, /absent\.yml/)
})

test('--version prints the package version', async (t) => {
  const { code, stdout } = await runCli(['--version'])
  t.equal(code, 0)
  t.match(stdout.trim(), /^\d+\.\d+\.\d+/)
})

test('--help describes the commands, options and signals', async (t) => {
  const { code, stdout } = await runCli(['--help'])
  t.equal(code, 0)
  for (const word of ['--check', 'schema', '--version', 'SIGHUP', 'SIGTERM', 'LOG_LEVEL']) t.match(stdout, word)
})

test('schema prints the JSON Schema of the YAML format', async (t) => {
  const { code, stdout } = await runCli(['schema'])
  t.equal(code, 0)
  const schema = JSON.parse(stdout) as { type?: string, properties?: Record<string, unknown> }
  t.equal(schema.type, 'object')
  t.ok(schema.properties?.server)
  t.ok(schema.properties?.applications)
})

test('an unknown option is a usage error (exit 2)', async (t) => {
  const { code, stderr } = await runCli(['--frobnicate'])
  t.equal(code, 2)
  t.match(stderr, /unknown option --frobnicate/)
})

test('the example configs are valid', async (t) => {
  for (const example of ['basic', 'tenants']) {
    const file = new URL(`../../../examples/${example}/navigator.yml`, import.meta.url).pathname
    const { code, stderr } = await runCli(['--check', file])
    t.equal(code, 0, `${example}: ${stderr}`)
  }
})

test('a port already in use: exit 1 with the reason, and the children it had started are stopped', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => { blocker.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { blocker.close() })
  const port = (blocker.address() as AddressInfo).port
  const cablePort = await freePort()
  const dir = tempDir({
    'navigator.yml': [
      'server:',
      `  listen: "127.0.0.1:${port}"`,
      'applications:',
      '  standalone_servers:',
      '    - name: cable',
      '      match_path: /cable',
      '      command: node',
      `      args: [${JSON.stringify(join(FIXTURES, 'cable.mjs'))}, "${cablePort}"]`,
      `      port: ${cablePort}`,
      ''
    ].join('\n')
  })
  const { code, stdout, stderr } = await runCli([join(dir, 'navigator.yml')])
  t.equal(code, 1)
  t.match(stderr, /EADDRINUSE/)
  const started = stdout.split('\n').filter((line) => line.includes('standalone server starting'))
  t.equal(started.length, 1, 'the standalone server had been started')
  // The line carries pino's "pid" and then the child's; JSON.parse keeps the last one.
  const childPid = (JSON.parse(started[0]) as { pid: number }).pid
  t.throws(() => process.kill(childPid, 0), { code: 'ESRCH' }, 'no orphan is left')
})

test('a pattern that backtracks catastrophically stops --check and the start with exit 2, at its position', async (t) => {
  const dir = tempDir({ 'navigator.yml': 'routes:\n  rewrites:\n    - pattern: "^/(a+)+$"\n      rewrite: "/x"\n' })
  for (const args of [['--check', join(dir, 'navigator.yml')], [join(dir, 'navigator.yml')]]) {
    const { code, stderr } = await runCli(args)
    t.equal(code, 2, `${args[0]}: exit 2`)
    t.match(stderr, /navigator\.yml:3:16: routes\.rewrites\.0\.pattern: this pattern can backtrack catastrophically/)
  }
})
