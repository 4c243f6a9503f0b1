import { test } from 'tap'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../src/load.js'
import type { ConfigProblem } from '../src/types.js'
import { problemsOf } from './helpers.js'

// server.cgi_scripts, logging.file / logging.vector and hooks.server.stop: their normalised form and their problems.

const summary = (problems: ConfigProblem[]): Array<[string, number, string]> => problems.map((p) => [p.path, p.line, p.message])

test('server.cgi_scripts: the normalised scripts, paths resolved against the config folder', async (t) => {
  const config = parseConfig([
    'server:',
    '  cgi_scripts:',
    '    - path: /admin/update',
    '      script: script/update.rb',
    '      method: post',
    '      allowed_users: [admin]',
    '      env: { RAILS_ENV: production }',
    '      reload_config: config/navigator.yml',
    '      timeout: 5m',
    '    - path: /plain',
    '      script: /opt/plain.sh',
    'auth:',
    '  enabled: true',
    '  htpasswd: htpasswd'
  ].join('\n'), { dir: '/srv/app', env: {} })
  t.same(config.server.cgiScripts, [
    {
      path: '/admin/update',
      script: '/srv/app/script/update.rb',
      method: 'POST',
      user: null,
      group: null,
      uid: null,
      gid: null,
      allowedUsers: ['admin'],
      env: { RAILS_ENV: 'production' },
      reloadConfig: '/srv/app/config/navigator.yml',
      timeoutMs: 300_000
    },
    { path: '/plain', script: '/opt/plain.sh', method: null, user: null, group: null, uid: null, gid: null, allowedUsers: [], env: {}, reloadConfig: null, timeoutMs: 0 }
  ])
})

test('server.cgi_scripts: each problem at its key, saying what to write instead', async (t) => {
  const problems = problemsOf(t, [
    'server:', //                        1
    '  cgi_scripts:', //                 2
    '    - path: /a', //                 3
    '      script: a.sh', //             4
    '      method: "GE T"', //           5  not a method
    '      allowed_users: [ann]', //     6  no auth
    '    - path: /a', //                 7  same path
    '      script: b.sh', //             8
    '      timeout: soon', //            9  bad duration
    '    - path: relative', //         10  not a URL path
    '      script: c.sh', //            11
    '    - script: d.sh' //             12  no path
  ].join('\n'))
  t.match(summary(problems), [
    ['server.cgi_scripts.0.method', 5, /HTTP method/],
    ['server.cgi_scripts.0.allowed_users', 6, /enable auth .* or remove allowed_users/],
    ['server.cgi_scripts.1.path', 7, /server\.cgi_scripts\.0\.path already/],
    ['server.cgi_scripts.1.timeout', 9, /duration/],
    ['server.cgi_scripts.2.path', 10, /must be a URL path starting with "\/"/],
    ['server.cgi_scripts.3', 12, /path/]
  ])
})

test('server.cgi_scripts: user and group are looked up (as root), or refused when Navigator is not root, with the launch paths', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-config-cgi-user-'))
  writeFileSync(join(dir, 'x.sh'), '#!/bin/sh\n')
  chmodSync(join(dir, 'x.sh'), 0o755)
  const yaml = (user: string, group = ''): string => ['server:', '  cgi_scripts:', '    - path: /x', '      script: x.sh', `      user: ${user}`, ...group === '' ? [] : [`      group: ${group}`]].join('\n')
  const checked = { dir, launchPaths: true }
  t.same(parseConfig(yaml('no-such-user-here'), { dir, env: {} }).server.cgiScripts[0].user, 'no-such-user-here', 'the machine is not asked without the launch paths')
  if (process.getuid?.() === 0) {
    const config = parseConfig(yaml('nobody', 'root'), { ...checked, env: {} })
    t.not(config.server.cgiScripts[0].uid, null, 'the user\'s uid')
    t.equal(config.server.cgiScripts[0].gid, 0, 'the group\'s gid')
    t.match(summary(problemsOf(t, yaml('no-such-user-here'), checked)), [['server.cgi_scripts.0.user', 5, /there is no user "no-such-user-here" on this system: create it/]])
    t.match(summary(problemsOf(t, yaml('nobody', 'no-such-group-here'), checked)), [['server.cgi_scripts.0.group', 6, /there is no group "no-such-group-here"/]])
  } else {
    t.match(summary(problemsOf(t, yaml('nobody'), checked)), [['server.cgi_scripts.0.user', 5, /needs Navigator to run as root .* remove user and group/]])
  }
})

test('server.cgi_scripts with launch paths checked: a missing or not executable script is a problem', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-config-cgi-'))
  writeFileSync(join(dir, 'plain.txt'), 'not a script')
  writeFileSync(join(dir, 'ok.sh'), '#!/bin/sh\n')
  chmodSync(join(dir, 'ok.sh'), 0o755)
  chmodSync(join(dir, 'plain.txt'), 0o644)
  const problems = problemsOf(t, [
    'server:',
    '  cgi_scripts:',
    '    - { path: /missing, script: missing.sh }',
    '    - { path: /plain, script: plain.txt }',
    '    - { path: /ok, script: ok.sh }'
  ].join('\n'), { dir, launchPaths: true })
  t.match(summary(problems), [
    ['server.cgi_scripts.0.script', 3, /does not exist: write its path/],
    ['server.cgi_scripts.1.script', 4, /is not executable: chmod \+x it/]
  ])
})

test('logging.file: resolved against the config folder, {{app}} kept; logging.vector: a problem saying what to do', async (t) => {
  const config = parseConfig('logging:\n  format: text\n  file: log/{{app}}.log\n', { dir: '/srv/app', env: {} })
  t.same(config.logging, { format: 'text', file: '/srv/app/log/{{app}}.log' })
  t.equal(parseConfig('logging:\n  file: /var/log/navigator.log\n', { dir: '/srv/app', env: {} }).logging.file, '/var/log/navigator.log')
  for (const vector of ['{ enabled: true, socket: /tmp/v.sock }', 'true']) {
    const problems = problemsOf(t, `logging:\n  vector: ${vector}\n`)
    t.match(summary(problems), [['logging.vector', 2, /^Vector is not built in: remove logging\.vector, set logging\.file .* a `file` source/]], vector)
  }
})

test('hooks.server.stop: one hook or a list, with timeouts', async (t) => {
  const config = parseConfig([
    'hooks:',
    '  server:',
    '    stop:',
    '      - command: /usr/local/bin/backup',
    '        args: [--all]',
    '        timeout: 30s',
    '      - command: sync'
  ].join('\n'), { env: {} })
  t.match(config.serverHooks.stop, [{ command: '/usr/local/bin/backup', args: ['--all'], timeoutMs: 30_000 }, { command: 'sync', args: [], timeoutMs: 0 }])
  t.match(parseConfig('hooks:\n  server:\n    stop: { command: sync }\n', { env: {} }).serverHooks.stop, [{ command: 'sync' }])
  const problems = summary(problemsOf(t, 'hooks:\n  server:\n    stop:\n      command: sync\n      timeout: later\n'))
  t.match(problems.find(([path]) => path === 'hooks.server.stop.timeout'), ['hooks.server.stop.timeout', 5, /is not a duration/])
})
