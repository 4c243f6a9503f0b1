import { test } from 'tap'
import { http, startNavigator, startSite, tempDir, tenant, writeConfig } from './helpers.js'

function config (lines: string[]): string {
  return ['server:', '  listen: "127.0.0.1:0"', ...lines, ''].join('\n')
}

test('SIGHUP with a valid config swaps routes; with an invalid one logs every problem and keeps the old one', async (t) => {
  const dir = tempDir({
    'navigator.yml': config(['  health_check: /up']),
    'public/hello.txt': 'hello\n'
  })
  const nav = await startNavigator(t, dir)
  t.equal((await http(nav.address, '/up')).status, 200)
  t.equal((await http(nav.address, '/ready')).status, 404)

  writeConfig(dir, config([
    '  health_check: /ready',
    'routes:',
    '  rewrites:',
    '    - pattern: "^/greeting$"',
    '      rewrite: "/hello.txt"'
  ]))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')
  t.equal((await http(nav.address, '/ready')).status, 200, 'the new health check answers')
  t.equal((await http(nav.address, '/up')).status, 404, 'the old one is gone')
  t.equal((await http(nav.address, '/greeting')).text, 'hello\n', 'the new rewrite applies')

  writeConfig(dir, config([
    '  health_check: /other',
    '  shutdown_timeout: soon',
    '  helth: 1'
  ]))
  nav.child.kill('SIGHUP')
  const kept = await nav.waitForLog((line) => /previous one stays in effect/.test(String(line.msg)))
  const problems = nav.logs.filter((line) => line.level === 50 && /navigator\.yml:\d+:\d+:/.test(String(line.msg)))
  t.equal(problems.length, 2, 'every problem is logged at error')
  t.ok(kept)
  t.equal((await http(nav.address, '/ready')).status, 200, 'the previous config still serves')
  t.equal((await http(nav.address, '/other')).status, 404)
})

test('SIGHUP does not drop a request in flight', async (t) => {
  const nav = await startSite(t, { tenants: [tenant('app', '/app')] })
  t.equal((await http(nav.address, '/app/warm')).status, 200)
  const slow = http(nav.address, '/app/slow?ms=1500')
  await nav.waitForLog((line) => line.msg === 'slow request started')
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')
  const answer = await slow
  t.equal(answer.status, 200)
  t.equal(answer.text, 'slow done\n')
  t.equal((await http(nav.address, '/app/after')).status, 200, 'the tenant keeps serving after the reload')
})

test('SIGTERM lets a slow request in flight complete, stops the tenant and exits 0', async (t) => {
  const nav = await startSite(t, { server: ['  shutdown_timeout: 10s'], tenants: [tenant('app', '/app')] })
  const tenantPid = (JSON.parse((await http(nav.address, '/app/')).text) as { pid: number }).pid
  const slow = http(nav.address, '/app/slow?ms=1500')
  await nav.waitForLog((line) => line.msg === 'slow request started')
  nav.child.kill('SIGTERM')
  const answer = await slow
  t.equal(answer.status, 200)
  t.equal(answer.text, 'slow done\n')
  const { code } = await nav.exited
  t.equal(code, 0)
  t.throws(() => process.kill(tenantPid, 0), { code: 'ESRCH' }, 'the tenant process is gone')
})
