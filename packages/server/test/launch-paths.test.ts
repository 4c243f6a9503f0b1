import { chmodSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { CABLE_APP, TENANT_APP, freePort, http, runCli, siteConfig, startNavigator, tempDir, tenant, writeConfig } from './helpers.js'

// A tenant's or standalone server's working directory or command that does not exist (issue 18, item 8): reported
// by --check, at start and at a reload, each in one line with its position, never a spawn ENOENT at the first
// request and a maintenance page that promises the app is coming back.

/** A config of four processes, each missing one thing (lines numbered as written below). */
function brokenConfig (dir: string): string {
  return [
    'server:', //                                                       1
    '  listen: "127.0.0.1:0"', //                                       2
    'applications:', //                                                 3
    '  tenants:', //                                                    4
    '    - name: seed', //                                              5
    '      path: /seed', //                                             6
    '      working_dir: /app-that-is-not-here', //                       7
    '    - name: rails', //                                             8
    '      path: /rails', //                                            9
    `      working_dir: ${JSON.stringify(join(dir, 'app'))}`, //        10
    '    - name: script', //                                            11
    '      path: /script', //                                           12
    '      command: bin/not-executable', //                             13
    `      working_dir: ${JSON.stringify(join(dir, 'app'))}`, //        14
    '  standalone_servers:', //                                         15
    '    - name: cable', //                                             16
    '      match_path: /cable', //                                      17
    '      command: anycable-go-not-installed', //                      18
    '      port: 28080', //                                             19
    ''
  ].join('\n')
}

function brokenSite (): { dir: string, file: string } {
  const dir = tempDir({ 'app/README': 'an app folder without bin/rails\n', 'app/bin/not-executable': '#!/bin/sh\n' })
  chmodSync(join(dir, 'app/bin/not-executable'), 0o644)
  const file = join(dir, 'navigator.yml')
  writeFileSync(file, brokenConfig(dir))
  return { dir, file }
}

function expectedLines (dir: string, file: string): string[] {
  const app = join(dir, 'app')
  return [
    `${file}:7:20: applications.tenants.0.working_dir: the working directory /app-that-is-not-here does not exist: create it, or set working_dir to the app's folder (relative paths start at the config file's folder)`,
    `${file}:10:20: applications.tenants.1.working_dir: the command ${app}/bin/rails (applications.command, resolved in this working directory) does not exist: write the path of the app's executable, relative to working_dir or absolute`,
    `${file}:13:16: applications.tenants.2.command: the command ${app}/bin/not-executable is not executable (chmod +x it): write the path of the app's executable, relative to working_dir or absolute`,
    `${file}:18:16: applications.standalone_servers.0.command: the command "anycable-go-not-installed" is not on PATH`
  ]
}

test('--check names each missing working directory and command, with its position, and exits 2', async (t) => {
  const { dir, file } = brokenSite()
  const { code, stdout, stderr } = await runCli(['--check', file])
  t.equal(code, 2)
  t.equal(stdout, '')
  const lines = stderr.trimEnd().split('\n')
  t.equal(lines.length, 4, `one line per problem:\n${stderr}`)
  const expected = expectedLines(dir, file)
  for (const line of expected) t.ok(lines.some((seen) => seen.startsWith(line)), `reported: ${line}`)
  t.notMatch(stderr, /ENOENT|\n\s+at /, 'no spawn error, no stack trace')
})

test('the same problems stop a start (exit 2) before anything is spawned or served', async (t) => {
  const { dir, file } = brokenSite()
  const { code, stdout, stderr } = await runCli([file])
  t.equal(code, 2)
  t.notMatch(stdout, /listening/, 'nothing was served')
  for (const line of expectedLines(dir, file)) t.ok(stderr.includes(line), `reported at start: ${line}`)
})

test('a reload to a config with a missing working directory is refused with the reason; the running one stays', async (t) => {
  const dir = tempDir({ 'navigator.yml': await siteConfig({ tenants: [tenant('app', '/app')] }) })
  const nav = await startNavigator(t, dir)
  t.equal((await http(nav.address, '/app/')).status, 200)
  writeConfig(dir, await siteConfig({ tenants: [tenant('app', '/app'), tenant('gone', '/gone', 'working_dir: ./missing-folder')] }))
  nav.child.kill('SIGHUP')
  const problem = await nav.waitForLog((line) => typeof line.msg === 'string' && line.msg.includes('applications.tenants.1.working_dir'))
  t.match(problem.msg, `the working directory ${join(dir, 'missing-folder')} does not exist`)
  await nav.waitForLog((line) => line.msg === 'configuration not reloaded: the previous one stays in effect')
  t.equal((await http(nav.address, '/app/')).status, 200, 'the running configuration keeps serving')
  t.equal((await http(nav.address, '/gone/')).status, 404, 'the refused tenant was not added')
})

test('a command that disappears after the start: a 502 page that says the app cannot start, one log line, no stack', async (t) => {
  const cablePort = await freePort()
  const dir = tempDir({
    'bin/app': `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(TENANT_APP)}\n`,
    'bin/cable': `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CABLE_APP)} ${cablePort}\n`
  })
  chmodSync(join(dir, 'bin/app'), 0o755)
  chmodSync(join(dir, 'bin/cable'), 0o755)
  writeConfig(dir, await siteConfig({
    tenants: [tenant('app', '/app', 'command: bin/app', `working_dir: ${JSON.stringify(dir)}`)],
    after: [
      '  standalone_servers:',
      '    - name: cable',
      '      match_path: /cable',
      '      command: bin/cable',
      `      working_dir: ${JSON.stringify(dir)}`,
      `      port: ${cablePort}`
    ]
  }))
  const nav = await startNavigator(t, dir)
  const cable = await nav.waitForLog((line) => line.msg === 'standalone server starting')
  await nav.waitForLog((line) => line.msg === 'standalone server ready')
  // A deploy that lost the app's files while Navigator runs.
  rmSync(join(dir, 'bin'), { recursive: true })

  const page = await http(nav.address, '/app/')
  t.equal(page.status, 502)
  t.match(page.text, 'This application cannot start', 'the page does not promise the app is coming back')
  t.equal(page.headers['retry-after'], undefined, 'no Retry-After')
  t.equal(page.headers['cache-control'], 'no-store')
  await nav.waitForLog((line) => line.msg === 'tenant cannot start') // log lines leave in batches
  const lines = nav.logs.filter((line) => line.process === 'app' && line.level === 50)
  t.same(lines.map((line) => [line.msg, line.reason]), [['tenant cannot start', `the command bin/app was not found (in ${dir}, or on PATH)`]], 'one error line with the reason')
  t.notOk(nav.logs.some((line) => JSON.stringify(line).includes('    at ')), 'no stack trace anywhere in the log')

  process.kill(cable.pid as number, 'SIGKILL')
  await nav.waitForLog((line) => line.msg === 'standalone server cannot start')
  const cablePage = await http(nav.address, '/cable')
  t.equal(cablePage.status, 502, 'a standalone server that cannot be spawned again: the same page')
  t.match(cablePage.text, 'This application cannot start')
})
