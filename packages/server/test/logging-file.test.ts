import { test } from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, http, reservePort, runCli, siteConfig, startNavigator, tempDir, tenant, waitFor, writeConfig } from './helpers.js'

// logging.file through the real navigator: `{{app}}` files per process beside stdout, in the configured format,
// appended to and created with their folder; logging.vector refused with what to do instead; no key twice in a JSON
// line; and the sticky-sessions troubleshooting recipe (LOG_LEVEL=debug, text format) with two Machines.

const read = (file: string): string => existsSync(file) ? readFileSync(file, 'utf8') : ''
const jsonLines = (text: string): Array<Record<string, unknown>> => text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)

/** The keys of a JSON object's top level as written, repeats included (JSON.parse keeps only the last). */
function topLevelKeys (json: string): string[] {
  const keys: string[] = []
  let depth = 0
  let expectKey = false
  for (let i = 0; i < json.length; i++) {
    const c = json[i]
    if (c === '"') {
      let end = i + 1
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(json.slice(i, end + 1)) as string)
        expectKey = false
      }
      i = end
    } else if (c === '{' || c === '[') {
      depth++
      if (c === '{' && depth === 1) expectKey = true
    } else if (c === '}' || c === ']') depth--
    else if (c === ',' && depth === 1) expectKey = true
  }
  return keys
}

function repeatedKeys (json: string): string[] {
  const keys = topLevelKeys(json)
  return keys.filter((key, index) => keys.indexOf(key) !== index)
}

test('the duplicate-key check finds a repeated key', async (t) => {
  t.same(repeatedKeys('{"level":30,"pid":1,"msg":"a \\"pid\\":2","pid":2,"nested":{"pid":3}}'), ['pid'])
  t.same(repeatedKeys('{"level":30,"pid":1,"nested":{"pid":3},"list":[{"pid":4}]}'), [])
})

test('{{app}}: each process\'s output in its own file, Navigator\'s lines in navigator\'s, every line on stdout too', async (t) => {
  const dir = tempDir({
    'logs/navigator/out.log': '{"msg":"a line of an earlier run"}\n',
    'noisy.sh': '#!/bin/sh\necho "script complaint" >&2\nprintf \'Content-Type: text/plain\\n\\nok\\n\'\n'
  })
  chmodSync(join(dir, 'noisy.sh'), 0o755)
  writeConfig(dir, await siteConfig({
    server: ['  cgi_scripts:', '    - path: /noisy', '      script: noisy.sh'],
    tenants: [tenant('app', '/app')],
    after: [
      'logging:',
      '  file: logs/{{app}}/out.log',
      'managed_processes:',
      '  - name: worker',
      '    command: sh',
      '    args: ["-c", "echo hello from worker; echo worker trouble >&2; exec sleep 60"]',
      'hooks:',
      '  server:',
      '    ready:',
      '      - command: sh',
      '        args: ["-c", "echo hook output line"]'
    ]
  }))
  const nav = await startNavigator(t, dir, { LOG_LEVEL: 'debug' })
  t.equal((await http(nav.address, '/app/slow?ms=1')).status, 200, 'the tenant answers (and logs a line)')
  t.equal((await http(nav.address, '/noisy')).text, 'ok\n', 'the CGI script answers (and writes to stderr)')
  await nav.waitForLog((line) => line.msg === 'hello from worker')
  await nav.waitForLog((line) => line.msg === 'hook output line')
  await nav.waitForLog((line) => line.msg === 'slow request started')

  const files = {
    navigator: join(dir, 'logs/navigator/out.log'),
    worker: join(dir, 'logs/worker/out.log'),
    app: join(dir, 'logs/app/out.log')
  }
  t.ok(await waitFor(() => read(files.worker).includes('worker trouble') && read(files.app).includes('slow request started') &&
    read(files.navigator).includes('hook output line') && read(files.navigator).includes('"url":"/noisy"'), 5_000), 'the lines reach the files')
  const navigator = read(files.navigator)
  t.ok(navigator.startsWith('{"msg":"a line of an earlier run"}\n'), 'the file is appended to')
  const own = jsonLines(navigator)
  t.ok(own.some((line) => line.msg === 'listening'), 'Navigator\'s own lines')
  t.ok(own.some((line) => line.msg === 'hook output line' && line.hook === 'server.ready'), 'a hook\'s output is Navigator\'s')
  t.ok(own.some((line) => line.msg === 'script complaint' && line.cgi === '/noisy'), 'so is a CGI script\'s stderr')
  t.ok(own.some((line) => line.msg === 'tenant ready' && line.process === 'app'), 'and its lines about a process')
  t.notOk(own.some((line) => line.stream !== undefined && line.process !== undefined), 'no process\'s output')
  const worker = jsonLines(read(files.worker))
  t.match(worker, [{ process: 'worker', stream: 'stdout', msg: 'hello from worker' }, { process: 'worker', stream: 'stderr', msg: 'worker trouble', level: 40 }], 'the worker\'s file: its output, and only that')
  t.equal(worker.length, 2)
  t.match(jsonLines(read(files.app)), [{ process: 'app', stream: 'stdout', msg: 'slow request started' }], 'the tenant\'s file')
  t.ok(nav.logs.some((line) => line.msg === 'hello from worker') && nav.logs.some((line) => line.msg === 'listening'), 'stdout has every line')

  // No JSON line, whatever wrote it (a child's output, a hook, a CGI script, a request at debug), repeats a key.
  const raw = [navigator, read(files.worker), read(files.app)].join('\n').split('\n').filter((line) => line.startsWith('{'))
  t.ok(raw.length > 15, `${raw.length} lines looked at`)
  const repeated = raw.filter((line) => repeatedKeys(line).length > 0)
  t.same(repeated, [], 'no line has a key twice')
  t.ok(raw.some((line) => topLevelKeys(line).includes('pid')), 'lines with a child\'s pid are among them')
})

test('logging.vector is a config error that says to point Vector at logging.file', async (t) => {
  const dir = tempDir({ 'navigator.yml': 'logging:\n  format: json\n  vector:\n    enabled: true\n    socket: /tmp/vector.sock\n' })
  const result = await runCli([join(dir, 'navigator.yml'), '--check'])
  t.equal(result.code, 2)
  t.match(result.stderr, /navigator\.yml:\d+:\d+: logging\.vector: Vector is not built in: remove logging\.vector, set logging\.file .*`file` source/)
})

test('a log file that cannot be opened stops the start with the reason', async (t) => {
  const dir = tempDir({ 'navigator.yml': 'server:\n  listen: "127.0.0.1:0"\nlogging:\n  file: navigator.yml/{{app}}.log\n' })
  const result = await runCli([join(dir, 'navigator.yml')])
  t.equal(result.code, 1)
  t.match(result.stderr, /cannot open the log file .*navigator\.yml\/navigator\.log \(logging\.file\): E(?:NOTDIR|EXIST)/)
})

/** A `navigator` of one Machine, with text logs at debug on stdout (kept) and in its logging.file. */
async function startTextMachine (t: { teardown: (fn: () => unknown) => void }, id: string, ports: Record<string, number>): Promise<{ stdout: () => string, file: string }> {
  const dir = tempDir()
  writeFileSync(join(dir, 'config.yml'), await siteConfig({
    listen: `"127.0.0.1:${ports[id]}"`,
    server: ['  shutdown_timeout: 1s'],
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*"]',
      '      peers:',
      ...Object.entries(ports).map(([peer, port]) => `        ${peer}: "http://127.0.0.1:${port}"`)
    ],
    tenants: [tenant('app', '/app')],
    after: ['logging:', '  format: text', '  file: log/navigator.log']
  }))
  mkdirSync(join(dir, 'log'), { recursive: true })
  let stdout = ''
  const child = spawn(process.execPath, [BIN, 'config.yml'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'debug', FLY_MACHINE_ID: id, FLY_APP_NAME: 'recipes', FLY_REGION: 'ord' }
  })
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const exited = new Promise((resolve) => { child.once('exit', resolve) })
  t.teardown(async () => {
    child.kill('SIGTERM')
    await exited
  })
  if (!await waitFor(() => / INFO listening /.test(stdout), 15_000)) throw new Error(`${id} did not start: ${stdout}`)
  return { stdout: () => stdout, file: join(dir, 'log/navigator.log') }
}

test('the recipe LOG_LEVEL=debug with logging.format text, two Machines: the sticky decisions on stdout and in the file', async (t) => {
  const reserved = { m1: await reservePort(), m2: await reservePort() }
  const ports = { m1: reserved.m1.port, m2: reserved.m2.port }
  await reserved.m1.release()
  const m1 = await startTextMachine(t, 'm1', ports)
  await reserved.m2.release()
  const m2 = await startTextMachine(t, 'm2', ports)

  const own = await http(`http://127.0.0.1:${ports.m2}`, '/app/page', { headers: { cookie: '_navigator_machine=m2' } })
  t.equal(own.status, 200, 'm2 serves its own cookie')
  const other = await http(`http://127.0.0.1:${ports.m1}`, '/app/page', { headers: { cookie: '_navigator_machine=m2' } })
  t.match(other, { status: 307, headers: { 'fly-replay': /^instance=m2;/ } }, 'm1 replays a request for m2')

  const found = /^\S+Z DEBUG Sticky session cookie found machine=m2$/m
  const replayed = /^\S+Z INFO Routing to machine via Fly-Replay machine=m2$/m
  t.ok(await waitFor(() => found.test(read(m2.file)) && replayed.test(read(m1.file)) && found.test(m2.stdout()) && replayed.test(m1.stdout()), 5_000), 'stdout and the files have the lines')
  t.match(m2.stdout(), found, 'm2, stdout: "Sticky session cookie found machine=m2"')
  t.match(read(m2.file), found, 'm2, its log file: the same line')
  t.match(m1.stdout(), replayed, 'm1, stdout: "Routing to machine via Fly-Replay machine=m2"')
  t.match(read(m1.file), replayed, 'm1, its log file: the same line')
  t.match(read(m2.file), /^\S+Z INFO tenant ready process=app port=\d+$/m, 'a line about a child, as text')
  t.notMatch(read(m1.file) + read(m2.file), /^\{/m, 'no JSON line in the text files')
})
