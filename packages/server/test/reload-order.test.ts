import { chmodSync, copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { http, startNavigator, tempDir, waitFor, withTestShutdown } from './helpers.js'

// Reloads asked for one after another take effect in that order, whoever asks: a SIGHUP reads its file when its turn
// comes, so a CGI script's (or a hook's) reload_config applied meanwhile is never overwritten by an older read. The
// SIGHUP's file brings a pattern no verdict is kept for, so its load waits for recheck's worker (a few hundred ms)
// while Navigator goes on serving the script.

const SCRIPTS = {
  'answer.sh': '#!/bin/sh\nprintf \'Content-Type: text/plain\\n\\nanswered\\n\'\n',
  // Replaces the configuration with b.yml, then reload_config reloads it.
  'switch.sh': '#!/bin/sh\ncp b.yml navigator.yml\nprintf \'Content-Type: text/plain\\n\\nswitched\\n\'\n'
}

function configText (only: string, extra: string[] = []): string {
  return withTestShutdown([
    'server:',
    '  listen: "127.0.0.1:0"',
    '  cgi_scripts:',
    `    - path: /only-${only}`,
    '      script: answer.sh',
    '    - path: /switch',
    '      script: switch.sh',
    '      reload_config: navigator.yml',
    ...extra,
    ''
  ].join('\n'))
}

test('a SIGHUP whose load is still running, then a script\'s reload_config: the script\'s file is the one in effect', async (t) => {
  const dir = tempDir({ ...SCRIPTS, 'navigator.yml': configText('start') })
  for (const name of Object.keys(SCRIPTS)) chmodSync(join(dir, name), 0o755)
  const pattern = `^/order-${process.pid}-${Date.now()}/(a|b)+$`
  writeFileSync(join(dir, 'a.yml'), configText('a', ['routes:', '  rewrites:', `    - pattern: ${JSON.stringify(pattern)}`, '      rewrite: /only-a']))
  writeFileSync(join(dir, 'b.yml'), configText('b'))
  const nav = await startNavigator(t, dir)
  t.equal((await http(nav.address, '/only-start')).status, 200, 'the first configuration')

  copyFileSync(join(dir, 'a.yml'), join(dir, 'navigator.yml'))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'reloading configuration')
  // While the SIGHUP's load waits for the worker: the script switches to b.yml and reloads it.
  t.match(await http(nav.address, '/switch'), { status: 200, text: 'switched\n' })
  await nav.waitForLog((line) => line.msg === 'configuration reloaded after the script')
  t.ok(await waitFor(() => nav.logs.filter((line) => line.msg === 'configuration reloaded').length === 2, 10_000), 'both reloads were applied')
  t.equal((await http(nav.address, '/only-b')).status, 200, 'b.yml, the file asked for last, is in effect')
  t.equal((await http(nav.address, '/only-a')).status, 404, 'a.yml, read first, did not come back over it')
})
