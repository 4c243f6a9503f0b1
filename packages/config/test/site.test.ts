import { test } from 'tap'
import { parseConfig } from '../src/load.js'
import { problemsOf } from './helpers.js'

// server.hostname, server.root_path, server.trust_proxy, and bot_detection of the server and of a tenant; a tenant's
// public_dir.

const TENANT = ['applications:', '  tenants:', '    - name: alpha', '      path: /alpha']

test('without the keys: every host, the site at /, X-Forwarded-* trusted by where Navigator runs, no bot detection', async (t) => {
  const config = parseConfig(TENANT.join('\n'), { dir: '/srv/app', env: {} })
  t.equal(config.server.hostname, null)
  t.equal(config.server.rootPath, null)
  t.equal(config.server.trustProxy, null, 'absent: decided by the server (Fly or not), not false')
  t.same(config.server.botDetection, { enabled: false, action: 'reject' })
  t.equal(config.applications.tenants[0].publicDir, null)
  t.equal(config.applications.tenants[0].botDetection, null, 'a tenant without its own uses the server\'s')
})

test('the keys are normalised: the host name in lower case, the root path without its slash, the folder absolute', async (t) => {
  const config = parseConfig([
    'server:',
    '  hostname: WWW.Example.COM.',
    '  root_path: /showcase/',
    '  trust_proxy: false',
    '  bot_detection:',
    '    enabled: true',
    ...TENANT,
    '      public_dir: alpha/public',
    '      bot_detection:',
    '        enabled: true',
    '        action: static-only'
  ].join('\n'), { dir: '/srv/app', env: {} })
  t.equal(config.server.hostname, 'www.example.com')
  t.equal(config.server.rootPath, '/showcase')
  t.equal(config.server.trustProxy, false, 'false as written, even where it would default to true')
  t.same(config.server.botDetection, { enabled: true, action: 'reject' }, 'enabled without an action: reject')
  t.equal(config.applications.tenants[0].publicDir, '/srv/app/alpha/public', 'relative to the config file\'s folder')
  t.same(config.applications.tenants[0].botDetection, { enabled: true, action: 'static-only' })
  t.equal(parseConfig('server:\n  root_path: /\n', { dir: '/srv', env: {} }).server.rootPath, null, '"/" is the site at /')
  t.equal(parseConfig('server:\n  trust_proxy: true\n', { dir: '/srv', env: {} }).server.trustProxy, true)
})

test('bad values are refused with what to write instead', async (t) => {
  const problems = problemsOf(t, [
    'server:', //                                  1
    '  hostname: "https://example.com:8443/"', //  2
    '  root_path: showcase', //                    3
    '  trust_proxy: "yes"', //                     4
    '  bot_detection:', //                         5
    '    enabled: true', //                        6
    '    action: block', //                        7
    'applications:', //                            8
    '  tenants:', //                               9
    '    - name: alpha', //                       10
    '      path: /alpha', //                      11
    '      public_dir: ""', //                    12
    '      bot_detection:', //                    13
    '        enabled: true', //                   14
    '        mode: reject' //                     15
  ].join('\n'))
  const byPath = new Map(problems.map((problem) => [problem.path, problem]))
  t.match(byPath.get('server.hostname'), { line: 2, message: /not a host name: write the name alone, such as example\.com/ })
  t.match(byPath.get('server.root_path'), { line: 3, message: /write a path starting with "\/", such as \/showcase/ })
  t.match(byPath.get('server.trust_proxy'), { line: 4, message: 'must be true or false' })
  t.match(byPath.get('server.bot_detection.action'), { line: 7, message: 'must be one of reject, ignore, static-only' })
  t.match(byPath.get('applications.tenants.0.public_dir'), { line: 12, message: 'must be a folder path' })
  t.match(byPath.get('applications.tenants.0.bot_detection.mode'), { line: 15 }, 'an unknown key of a tenant\'s bot_detection')
  t.equal(problems.length, 6, problems.map((problem) => problem.message).join('\n'))
  t.match(problemsOf(t, 'server:\n  root_path: /showcase/../admin\n'), [{ path: 'server.root_path', message: /no spaces, "\?", "#", "\*" or dot segments/ }])
})
