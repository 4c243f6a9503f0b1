import { test } from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { alive, BIN, http, startNavigator, tempDir, waitFor, writeConfig } from './helpers.js'

// server.cgi_scripts through the real navigator: the CGI/1.1 environment a script sees, the request body on its
// stdin, its headers (Status, Location) and streamed body as the answer, its timeout, allowed_users with auth, a
// client that goes away, output that is no CGI answer, and reload_config.

const sha = (password: string): string => `{SHA}${createHash('sha1').update(password).digest('base64')}`

const SCRIPTS: Record<string, string> = {
  // Its whole environment and its stdin, as JSON.
  'env.js': `#!/usr/bin/env node
let body = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => { body += chunk })
process.stdin.on('end', () => {
  process.stdout.write('Content-Type: application/json\\r\\nX-Script: env\\r\\n\\r\\n')
  process.stdout.write(JSON.stringify({ env: process.env, body, uid: process.getuid(), cwd: process.cwd() }))
})
`,
  'created.sh': '#!/bin/sh\nprintf \'Status: 201 Created\\nLocation: /things/1\\nContent-Type: text/plain\\n\\ncreated\\n\'\n',
  'moved.sh': '#!/bin/sh\nprintf \'Location: /elsewhere\\n\\n\'\n',
  // Its pid in a file, then it waits (as sleep, after exec) far longer than any test.
  'slow.sh': '#!/bin/sh\necho $$ > "$PID_FILE"\nexec sleep 60\n',
  // Headers and a first line, then the rest once the test has seen the first line (the answer is streamed).
  'stream.sh': '#!/bin/sh\nprintf \'Content-Type: text/plain\\n\\nfirst\\n\'\nwhile [ ! -f go ]; do sleep 0.05; done\nprintf \'second\\n\'\n',
  'bad.sh': '#!/bin/sh\nprintf \'this is not a header\\n\\nbody\\n\'\n',
  'silent.sh': '#!/bin/sh\nexit 3\n',
  // Replaces the configuration with next.yml, which adds a script on /added.
  'reconfigure.sh': '#!/bin/sh\ncp next.yml navigator.yml\nprintf \'Content-Type: text/plain\\n\\nreconfigured\\n\'\n'
}

function configText (extra: string[] = []): string {
  return [
    'server:',
    '  listen: "127.0.0.1:0"',
    '  cgi_scripts:',
    '    - path: /env',
    '      script: env.js',
    '      env:',
    '        FROM_CONFIG: "yes"',
    '    - path: /created',
    '      script: created.sh',
    '      method: POST',
    '    - path: /moved',
    '      script: moved.sh',
    '    - path: /slow',
    '      script: slow.sh',
    '      timeout: 1s',
    '      env:',
    '        PID_FILE: slow.pid',
    '    - path: /held',
    '      script: slow.sh',
    '      env:',
    '        PID_FILE: held.pid',
    '    - path: /stream',
    '      script: stream.sh',
    '    - path: /bad',
    '      script: bad.sh',
    '    - path: /silent',
    '      script: silent.sh',
    '    - path: /admin',
    '      script: env.js',
    '      allowed_users: [ann]',
    '    - path: /public-admin',
    '      script: env.js',
    '      allowed_users: [ann]',
    '    - path: /reconfigure',
    '      script: reconfigure.sh',
    '      reload_config: navigator.yml',
    ...extra,
    'auth:',
    '  enabled: true',
    '  htpasswd: htpasswd',
    '  public_paths: [/env, /created, /moved, /slow, /held, /stream, /bad, /silent, /public-admin, /reconfigure, /added]',
    ''
  ].join('\n')
}

function site (): string {
  const dir = tempDir({ ...SCRIPTS, htpasswd: `ann:${sha('secret')}\nbob:${sha('hunter2')}\n` })
  for (const name of Object.keys(SCRIPTS)) chmodSync(join(dir, name), 0o755)
  writeConfig(dir, configText())
  writeFileSync(join(dir, 'next.yml'), configText(['    - path: /added', '      script: created.sh']))
  return dir
}

const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`

interface Seen { env: Record<string, string>, body: string, uid: number, cwd: string }

test('CGI scripts run through the real navigator', async (t) => {
  const dir = site()
  const nav = await startNavigator(t, dir)
  const url = new URL(nav.address)

  await t.test('the script sees the CGI/1.1 variables, the request headers as HTTP_*, its env, and the body on stdin', async (t) => {
    const answer = await http(nav.address, '/env?a=1&b=two', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-custom': 'value', proxy: 'http://evil.example:1', x_under: 'smuggled' },
      body: 'hello from the client'
    })
    t.equal(answer.status, 200)
    t.equal(answer.headers['content-type'], 'application/json')
    t.equal(answer.headers['x-script'], 'env', 'the script\'s own header')
    const seen = JSON.parse(answer.text) as Seen
    t.match(seen.env, {
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_SOFTWARE: /^Navigator\/\d/,
      REQUEST_METHOD: 'POST',
      QUERY_STRING: 'a=1&b=two',
      SCRIPT_NAME: '/env',
      PATH_INFO: '',
      CONTENT_TYPE: 'text/plain',
      CONTENT_LENGTH: String(Buffer.byteLength('hello from the client')),
      REMOTE_ADDR: '127.0.0.1',
      SERVER_NAME: '127.0.0.1',
      SERVER_PORT: url.port,
      HTTP_X_CUSTOM: 'value',
      HTTP_HOST: url.host,
      FROM_CONFIG: 'yes'
    })
    t.equal(seen.body, 'hello from the client', 'the request body on stdin')
    t.not(seen.env.HTTP_PROXY, 'http://evil.example:1', 'a Proxy header never becomes HTTP_PROXY (httpoxy)')
    t.equal(seen.env.HTTP_X_UNDER, undefined, 'a header name with "_" is left out')
    t.equal(seen.env.REMOTE_USER, undefined, 'no credentials: no REMOTE_USER')
    t.equal(seen.cwd, dir, 'it runs in the config file\'s folder')
  })

  await t.test('credentials auth verifies give REMOTE_USER, and the password never reaches the script', async (t) => {
    const seen = JSON.parse((await http(nav.address, '/env', { headers: { authorization: basic('ann:secret') } })).text) as Seen
    t.equal(seen.env.REMOTE_USER, 'ann')
    t.equal(seen.env.AUTH_TYPE, 'Basic')
    t.equal(seen.env.HTTP_AUTHORIZATION, undefined)
    const wrong = JSON.parse((await http(nav.address, '/env', { headers: { authorization: basic('ann:wrong') } })).text) as Seen
    t.equal(wrong.env.REMOTE_USER, undefined, 'a wrong password on a public path: no REMOTE_USER')
  })

  await t.test('Status and Location are the answer\'s; Location alone is a 302; another method gets 405 with Allow', async (t) => {
    t.match(await http(nav.address, '/created', { method: 'POST', body: 'x' }), { status: 201, text: 'created\n', headers: { location: '/things/1', 'content-type': 'text/plain' } })
    const large = Buffer.alloc(4 * 1024 * 1024, 'a')
    // On a kept-alive connection, as a browser sends it: with `Connection: close` (the helper's default) Node ends the
    // socket after the answer, and a client still writing the body gets EPIPE before it reads the answer.
    t.match(await http(nav.address, '/created', { method: 'POST', body: large, headers: { connection: 'keep-alive' } }), { status: 201 }, 'a large body the script never reads: answered all the same')
    t.match(await http(nav.address, '/moved'), { status: 302, headers: { location: '/elsewhere' } })
    const get = await http(nav.address, '/created')
    t.match(get, { status: 405, headers: { allow: 'POST' } })
  })

  await t.test('the answer is streamed: the first line arrives while the script still runs', async (t) => {
    const first = await new Promise<{ status: number, rest: Promise<string> }>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: '/stream', agent: false }, (res) => {
        res.setEncoding('utf8')
        let text = ''
        const rest = new Promise<string>((resolve) => { res.on('end', () => { resolve(text) }) })
        res.on('data', (chunk: string) => {
          if (text === '') resolve({ status: res.statusCode ?? 0, rest })
          text += chunk
        })
      })
      req.on('error', reject)
      req.end()
    })
    t.equal(first.status, 200)
    t.notOk(existsSync(join(dir, 'go')), 'the script is still waiting when the first line is read')
    writeFileSync(join(dir, 'go'), '')
    t.equal(await first.rest, 'first\nsecond\n')
  })

  await t.test('a script past its timeout is killed and the client gets 504', async (t) => {
    const answer = await http(nav.address, '/slow')
    t.equal(answer.status, 504)
    t.match(JSON.parse(answer.text), { code: 'NAV_SERVER_CGI_TIMEOUT', message: /timeout of 1000 ms/ })
    const pid = Number(readFileSync(join(dir, 'slow.pid'), 'utf8'))
    t.ok(await waitFor(() => !alive(pid), 5_000), 'the script\'s process is gone')
  })

  await t.test('a client that goes away kills the script', async (t) => {
    const req = request({ host: url.hostname, port: url.port, path: '/held', agent: false })
    req.on('error', () => {})
    req.end()
    t.ok(await waitFor(() => existsSync(join(dir, 'held.pid')) && readFileSync(join(dir, 'held.pid'), 'utf8').endsWith('\n'), 10_000), 'the script started')
    const pid = Number(readFileSync(join(dir, 'held.pid'), 'utf8'))
    t.ok(alive(pid), 'it runs while the client waits')
    req.destroy()
    t.ok(await waitFor(() => !alive(pid), 5_000), 'the script is killed once the client is gone')
    await nav.waitForLog((line) => line.msg === 'client went away: the CGI script is stopped' && line.cgi === '/held')
  })

  await t.test('output that is no CGI answer, or none, is a 502', async (t) => {
    const bad = await http(nav.address, '/bad')
    t.equal(bad.status, 502)
    t.match(JSON.parse(bad.text), { code: 'NAV_SERVER_CGI_BAD_OUTPUT', message: /not "Name: value"/ })
    const silent = await http(nav.address, '/silent')
    t.equal(silent.status, 502)
    t.match(JSON.parse(silent.text), { code: 'NAV_SERVER_CGI_BAD_OUTPUT', message: /wrote nothing \(exit 3\)/ })
  })

  await t.test('allowed_users: the right user 200, another user 403, no password 401 (on a public path too)', async (t) => {
    for (const path of ['/admin', '/public-admin']) {
      const right = await http(nav.address, path, { headers: { authorization: basic('ann:secret') } })
      t.equal(right.status, 200, `${path}: ann`)
      t.equal((JSON.parse(right.text) as Seen).env.REMOTE_USER, 'ann')
      t.equal((await http(nav.address, path, { headers: { authorization: basic('bob:hunter2') } })).status, 403, `${path}: bob`)
      const none = await http(nav.address, path)
      t.equal(none.status, 401, `${path}: no password`)
      t.match(none.headers['www-authenticate'], /^Basic realm=/)
      t.equal((await http(nav.address, path, { headers: { authorization: basic('ann:wrong') } })).status, 401, `${path}: a wrong password`)
    }
  })

  await t.test('a WebSocket upgrade on a script\'s path gets 400', async (t) => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: '/env', agent: false, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } })
      req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('upgrade', (_res, socket) => { socket.destroy(); resolve(101) })
      req.on('error', reject)
      req.end()
    })
    t.equal(status, 400)
  })

  await t.test('reload_config: the script rewrites the configuration and the new one is in effect when the answer ends', async (t) => {
    t.equal((await http(nav.address, '/added', { method: 'POST' })).status, 404, 'not a script before')
    const answer = await http(nav.address, '/reconfigure')
    t.match(answer, { status: 200, text: 'reconfigured\n' })
    t.match(await http(nav.address, '/added', { method: 'POST' }), { status: 201, text: 'created\n' }, 'the script the new configuration adds answers')
    await nav.waitForLog((line) => line.msg === 'configuration reloaded after the script' && line.cgi === '/reconfigure')
  })
})

test('a script runs as `user` when Navigator runs as root; a Navigator that is not root refuses the key', { skip: process.getuid?.() !== 0 ? 'not root' : false }, async (t) => {
  const dir = tempDir({ 'env.js': SCRIPTS['env.js'] })
  chmodSync(dir, 0o755)
  chmodSync(join(dir, 'env.js'), 0o755)
  writeConfig(dir, ['server:', '  listen: "127.0.0.1:0"', '  cgi_scripts:', '    - path: /whoami', '      script: env.js', '      user: nobody', ''].join('\n'))
  chmodSync(join(dir, 'navigator.yml'), 0o644)
  const nav = await startNavigator(t, dir)
  const seen = JSON.parse((await http(nav.address, '/whoami')).text) as Seen
  t.not(seen.uid, 0, 'not root')
  t.equal(seen.uid, Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((line) => line.startsWith('nobody:'))?.split(':')[2]), 'nobody\'s uid')

  // The same file checked by a navigator running as nobody.
  const check = spawn(process.execPath, [BIN, join(dir, 'navigator.yml'), '--check'], { uid: seen.uid, gid: seen.uid, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  check.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise((resolve) => { check.once('exit', resolve) })
  t.equal(code, 2, '--check fails')
  t.match(stderr, /server\.cgi_scripts\.0\.user: running a script as another user needs Navigator to run as root/)
})
