import { test } from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { alive, http, siteConfig, startNavigator, tempDir, tenant, writeConfig } from './helpers.js'

// hooks.server.stop through the real navigator: run at SIGTERM once the tenants are stopped, each killed at its
// timeout (or when server.shutdown_timeout runs out), and Navigator exits all the same.

async function siteWithStopHooks (hooks: string[], server: string[] = []): Promise<string> {
  const dir = tempDir()
  const text = await siteConfig({ server, tenants: [tenant('app', '/app')] })
  writeConfig(dir, [text, 'hooks:', '  server:', '    stop:', ...hooks, ''].join('\n'))
  return dir
}

test('a stop hook runs at SIGTERM, after the tenants are stopped, and Navigator exits 0', async (t) => {
  // It writes whether the tenant (its pid in tenant.pid) still runs, and its environment's FROM_NAVIGATOR.
  const dir = await siteWithStopHooks([
    '      - command: sh',
    '        args: ["-c", "if kill -0 \\"$(cat tenant.pid)\\" 2>/dev/null; then echo running; else echo stopped; fi > stop-hook.txt; echo \\"$FROM_NAVIGATOR\\" >> stop-hook.txt"]',
    '        timeout: 10s'
  ])
  const nav = await startNavigator(t, dir, { FROM_NAVIGATOR: 'environment' })
  t.equal((await http(nav.address, '/app/')).status, 200, 'the tenant answers')
  const started = await nav.waitForLog((line) => line.msg === 'tenant starting')
  writeFileSync(join(dir, 'tenant.pid'), String(started.pid))
  t.ok(alive(Number(started.pid)), 'the tenant runs (the pid the hook looks at)')
  t.notOk(existsSync(join(dir, 'stop-hook.txt')), 'not run before the stop')

  nav.child.kill('SIGTERM')
  const exit = await nav.exited
  t.equal(exit.code, 0, 'Navigator exits 0')
  t.equal(readFileSync(join(dir, 'stop-hook.txt'), 'utf8'), 'stopped\nenvironment\n', 'the hook ran with Navigator\'s environment once the tenant was stopped')
  const messages = nav.logs.map((line) => `${String(line.hook ?? '')} ${String(line.msg)}`)
  const done = messages.indexOf('server.stop hook done')
  t.ok(done > messages.indexOf(' shutting down'), 'after the shutdown began')
  t.ok(done < messages.indexOf(' stopped'), 'and before Navigator says it stopped')
})

test('a hanging stop hook is killed at its timeout, the next one still runs, and Navigator exits', async (t) => {
  const dir = await siteWithStopHooks([
    '      - command: sh',
    '        args: ["-c", "echo $$ > hang.pid; exec sleep 60"]',
    '        timeout: 1s',
    '      - command: sh',
    '        args: ["-c", "echo second > second.txt"]'
  ], ['  shutdown_timeout: 20s'])
  const nav = await startNavigator(t, dir)
  nav.child.kill('SIGTERM')
  const exit = await nav.exited
  t.equal(exit.code, 0)
  const failed = nav.logs.find((line) => line.msg === 'hook failed' && line.hook === 'server.stop')
  t.match(failed, { reason: 'killed after its timeout of 1000 ms' }, 'killed at its own timeout, not at shutdown_timeout')
  t.notOk(alive(Number(readFileSync(join(dir, 'hang.pid'), 'utf8'))), 'its process is gone')
  t.equal(readFileSync(join(dir, 'second.txt'), 'utf8'), 'second\n', 'the next stop hook ran')
})

test('stop hooks without a timeout of their own are bounded by server.shutdown_timeout', async (t) => {
  const dir = await siteWithStopHooks([
    '      - command: sh',
    '        args: ["-c", "echo $$ > hang.pid; exec sleep 60"]',
    '      - command: sh',
    '        args: ["-c", "echo never > never.txt"]'
  ], ['  shutdown_timeout: 1s'])
  const nav = await startNavigator(t, dir)
  const stoppedAt = Date.now()
  nav.child.kill('SIGTERM')
  const exit = await nav.exited
  t.equal(exit.code, 0)
  t.ok(Date.now() - stoppedAt < 30_000, 'Navigator exited long before the hook would have ended')
  t.match(nav.logs.find((line) => line.msg === 'hook failed' && line.hook === 'server.stop'), { reason: /^killed after its timeout of \d+ ms$/ })
  t.match(nav.logs.filter((line) => line.msg === 'hook failed' && line.hook === 'server.stop')[1], { reason: 'not started: no time was left for it' })
  t.notOk(alive(Number(readFileSync(join(dir, 'hang.pid'), 'utf8'))), 'its process is gone')
  t.notOk(existsSync(join(dir, 'never.txt')), 'a hook with no time left does not start')
})
