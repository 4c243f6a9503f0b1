import { spawn, execFileSync } from 'node:child_process'
import { openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { BIN, freePort, siteConfig, tempDir, tenant, waitFor } from './helpers.js'

// The troubleshooting recipes of the sticky-sessions guide, run as written (with this machine's port): a cookie jar
// kept by curl, text logs at debug read with grep, and the "machine unavailable" lines counted with grep -c.

const SHELL_TIMEOUT_MS = 15_000

/** Runs a shell command line in `dir`, as a reader of the docs would, and returns its standard output. */
function sh (dir: string, line: string): string {
  return execFileSync('sh', ['-c', line], { cwd: dir, encoding: 'utf8', timeout: SHELL_TIMEOUT_MS })
}

test('the guide\'s recipes: curl\'s cookie jar, LOG_LEVEL=debug text logs with grep, and counting "machine unavailable"', async (t) => {
  const port = await freePort()
  const dir = tempDir()
  writeFileSync(join(dir, 'config.yml'), await siteConfig({
    listen: `"127.0.0.1:${port}"`,
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*", "/app"]',
      '      peers:',
      `        m1: "http://127.0.0.1:${port}"`,
      `        m2: "http://127.0.0.1:${await freePort()}"`
    ],
    tenants: [tenant('app', '/app')],
    after: ['logging:', '  format: text']
  }))
  // LOG_LEVEL=debug navigator config.yml, its output kept in a file to grep.
  const log = openSync(join(dir, 'navigator.log'), 'w')
  const child = spawn(process.execPath, [BIN, 'config.yml'], {
    cwd: dir,
    stdio: ['ignore', log, log],
    env: { ...process.env, LOG_LEVEL: 'debug', FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'recipes', FLY_REGION: 'ord' }
  })
  const exited = new Promise((resolve) => { child.once('exit', resolve) })
  t.teardown(async () => {
    child.kill('SIGTERM')
    await exited
  })
  const logText = (): string => readFileSync(join(dir, 'navigator.log'), 'utf8')
  t.ok(await waitFor(() => logText().includes(' INFO listening '), 15_000, 50), 'listening (a text line)')
  const url = `http://127.0.0.1:${port}/app`

  // Test Sticky Routing: a cookie jar, the same Machine every time, the cookie's value in the jar.
  sh(dir, `curl -s -c cookies.txt -b cookies.txt ${url} > first.txt`)
  const answers = [sh(dir, `curl -s -b cookies.txt ${url}`), sh(dir, `curl -s -b cookies.txt ${url}`)]
  for (const answer of answers) t.match(answer, /"url":"\/app"/, 'the tenant answered')
  const jar = sh(dir, 'cat cookies.txt | grep navigator_machine')
  t.match(jar, /\t_navigator_machine\tm1$/m, 'the jar holds the cookie, naming this Machine')
  t.match(sh(dir, `curl -v ${url}/ 2>&1 | grep -i Set-Cookie`), /set-cookie: _navigator_machine=m1;/i, 'curl -v shows the Set-Cookie')

  // A cookie for the other Machine: replayed; then one whose Machine cannot be reached (Fly handed the replay back).
  sh(dir, `curl -s -o /dev/null -b _navigator_machine=m2 ${url}`)
  for (let i = 0; i < 3; i++) sh(dir, `curl -s -o /dev/null -b _navigator_machine=m2 -H 'fly-replay-failed: reason=timeout' ${url}`)

  t.ok(await waitFor(() => (logText().match(/machine unavailable/g) ?? []).length >= 3, 5_000, 50), 'the fallbacks are logged')
  t.match(sh(dir, 'grep "Sticky session cookie found machine=" navigator.log'), /^\S+Z DEBUG Sticky session cookie found machine=m1$/m,
    'LOG_LEVEL=debug: "<time> DEBUG Sticky session cookie found machine=<id>"')
  t.match(sh(dir, 'grep "Routing to machine via Fly-Replay" navigator.log'), /^\S+Z INFO Routing to machine via Fly-Replay machine=m2$/m,
    '"<time> INFO Routing to machine via Fly-Replay machine=<id>"')
  t.equal(sh(dir, 'grep "machine unavailable" navigator.log | wc -l').trim(), '3', 'grep counts one line per fallback')
  t.notMatch(logText(), /^\{/m, 'no JSON line in text mode')
})
