import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { alive, FIXTURES, http, runCli, siteConfig, startFakeMachinesApi, startNavigator, tempDir, tenant, withTestShutdown, writeConfig } from './helpers.js'

const HOOK = join(FIXTURES, 'hook.mjs')

/** One hook entry as YAML flow text: node running the fixture hook with these arguments. */
function hook (record: string, label: string, ...rest: string[]): string {
  return `{ command: node, args: ${JSON.stringify([HOOK, record, label, ...rest])} }`
}

/** The record file's lines, parsed: label, time and what the hook saw. */
function recorded (record: string): Array<{ label: string, at: number, seen: string }> {
  let text = ''
  try {
    text = readFileSync(record, 'utf8')
  } catch {}
  return text.split('\n').filter((line) => line !== '').map((line) => {
    const [label, at, ...seen] = line.split(' ')
    return { label, at: Number(at), seen: seen.join(' ') }
  })
}

test('server.start runs before Navigator listens, ready after; tenant hooks run with the tenant\'s environment around its life', async (t) => {
  const dir = tempDir()
  const record = join(dir, 'record.txt')
  writeConfig(dir, [
    await siteConfig({
      applications: ['  env:', '    TENANT_NAME: "${database}-env"'],
      tenants: [tenant('one', '/one', 'var: { database: db1 }', 'hooks:', `  start: ${hook(record, 'own-start', 'ok', '${database}')}`)]
    }),
    'hooks:',
    '  server:',
    `    start: [${hook(record, 'server-start')}]`,
    `    ready: ${hook(record, 'server-ready')}`,
    '  tenant:',
    `    start: [${hook(record, 'tenant-start', 'ok', '${database}')}]`,
    `    stop: [${hook(record, 'tenant-stop', 'ok', '${database}')}]`,
    ''
  ].join('\n'))
  const nav = await startNavigator(t, dir)
  const listening = nav.logs.findIndex((line) => line.msg === 'listening')
  const started = nav.logs.findIndex((line) => line.msg === 'hook done' && line.hook === 'server.start')
  t.ok(started !== -1 && started < listening, 'server.start finished before listening')
  await nav.waitForLog((line) => line.msg === 'hook done' && line.hook === 'server.ready')

  const answer = await http(nav.address, '/one/')
  t.equal(answer.status, 200)
  const answeredAt = Date.now()
  const labels = recorded(record).map((line) => line.label)
  t.same(labels, ['server-start', 'server-ready', 'tenant-start', 'own-start'], 'hooks.tenant first, then the tenant\'s own, before the first answer')
  const ownStart = recorded(record)[3]
  t.ok(ownStart.at <= answeredAt)
  const seen = JSON.parse(ownStart.seen) as { args: string[], PORT: string, TENANT_NAME: string }
  t.same(seen.args, ['db1'], '${var} resolved from the tenant\'s var')
  t.equal(seen.TENANT_NAME, 'db1-env', 'the tenant\'s environment')
  t.match(seen.PORT, /^\d+$/)

  nav.child.kill('SIGTERM')
  await nav.exited
  const stop = recorded(record).find((line) => line.label === 'tenant-stop')
  t.ok(stop !== undefined, 'tenant.stop ran before the tenant was stopped')
  t.same((JSON.parse(stop?.seen ?? '{}') as { args: string[] }).args, ['db1'])
})

test('a failing server.start hook stops the start, non-zero, with the hook\'s output', async (t) => {
  const dir = tempDir({ 'public/hello.txt': 'hello\n' })
  const record = join(dir, 'record.txt')
  writeConfig(dir, [
    'server:',
    '  listen: "127.0.0.1:0"',
    'hooks:',
    '  server:',
    `    start: ${hook(record, 'server-start', 'fail')}`,
    `    ready: ${hook(record, 'server-ready')}`,
    ''
  ].join('\n'))
  const result = await runCli([join(dir, 'navigator.yml')], 15_000)
  t.equal(result.code, 1)
  t.match(result.stderr, /server\.start/)
  t.match(result.stderr, /exited with status 3/)
  t.match(result.stderr, /migration failed: the database is locked/)
  t.notMatch(result.stdout, /"msg":"listening"/)
  t.same(recorded(record).map((line) => line.label), ['server-start'])
})

test('the idle hook finishes before the Machines API is asked to suspend; resume runs when a request comes back', async (t) => {
  const dir = tempDir({ 'public/hello.txt': 'hello\n' })
  const record = join(dir, 'record.txt')
  const apiSocket = join(dir, 'api.sock')
  const { calls, firstCall } = await startFakeMachinesApi(t, apiSocket)
  writeConfig(dir, [
    'server:',
    '  listen: "127.0.0.1:0"',
    '  idle:',
    '    action: suspend',
    '    timeout: 500ms',
    `    api_socket: ${JSON.stringify(apiSocket)}`,
    'hooks:',
    '  server:',
    `    idle: { command: node, args: ${JSON.stringify([HOOK, record, 'idle', 'sleep', '700'])}, timeout: 5s }`,
    `    resume: ${hook(record, 'resume')}`,
    ''
  ].join('\n'))
  const nav = await startNavigator(t, dir, { FLY_MACHINE_ID: 'm1abc', FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' })
  await firstCall
  const atCall = recorded(record).map((line) => line.label)
  t.same(atCall, ['idle', 'idle-done'], 'the hook had finished when the API was called')
  t.same(calls[0], { method: 'POST', url: '/v1/apps/navtest/machines/m1abc/suspend' })

  t.equal((await http(nav.address, '/hello.txt')).status, 200)
  await nav.waitForLog((line) => line.msg === 'hook done' && line.hook === 'server.resume')
  t.same(recorded(record).map((line) => line.label), ['idle', 'idle-done', 'resume'])
})

test('a hook that hangs is killed at its timeout, with everything in its process group', async (t) => {
  const dir = tempDir({ 'public/hello.txt': 'hello\n' })
  const record = join(dir, 'record.txt')
  writeConfig(dir, [
    'server:',
    '  listen: "127.0.0.1:0"',
    'hooks:',
    '  server:',
    `    ready: { command: node, args: ${JSON.stringify([HOOK, record, 'ready', 'hang'])}, timeout: 3s }`,
    ''
  ].join('\n'))
  const nav = await startNavigator(t, dir)
  const failed = await nav.waitForLog((line) => line.msg === 'hook failed' && line.hook === 'server.ready')
  t.match(failed.reason, /timeout of 3000 ms/)
  const child = Number(recorded(record).find((line) => line.label === 'ready-child')?.at)
  t.ok(child > 0, 'the hook started a child')
  t.notOk(alive(child), 'the hook\'s child is gone too')
  t.equal((await http(nav.address, '/hello.txt')).status, 200, 'Navigator serves on')
})

test('reload_config reloads the configuration a hook changed', async (t) => {
  const dir = tempDir({ 'a/hello.txt': 'from a\n', 'b/hello.txt': 'from b\n' })
  const record = join(dir, 'record.txt')
  const config = join(dir, 'navigator.yml')
  const withPublicDir = (publicDir: string): string => [
    'server:',
    '  listen: "127.0.0.1:0"',
    `  static: { public_dir: ${publicDir} }`,
    'hooks:',
    '  server:',
    `    ready: { command: node, args: ${JSON.stringify([HOOK, record, 'ready', 'copy', join(dir, 'next.yml'), config])}, reload_config: navigator.yml }`,
    ''
  ].join('\n')
  writeFileSync(join(dir, 'next.yml'), withTestShutdown(withPublicDir('b')))
  writeConfig(dir, withPublicDir('a'))
  const nav = await startNavigator(t, dir)
  await nav.waitForLog((line) => line.msg === 'configuration reloaded after the hook')
  t.equal((await http(nav.address, '/hello.txt')).text, 'from b\n')
})

test('reload_config of a tenant hook reloads in the background: the request that started the tenant is served', async (t) => {
  const dir = tempDir({ 'a/hello.txt': 'from a\n', 'b/hello.txt': 'from b\n' })
  const record = join(dir, 'record.txt')
  const config = join(dir, 'navigator.yml')
  const withPublicDir = async (publicDir: string): Promise<string> => await siteConfig({
    server: [`  static: { public_dir: ${publicDir} }`],
    tenants: [tenant('one', '/one')],
    after: [
      'hooks:',
      '  tenant:',
      `    start: { command: node, args: ${JSON.stringify([HOOK, record, 'tenant-start', 'copy', join(dir, 'next.yml'), config])}, reload_config: navigator.yml, timeout: 10s }`
    ]
  })
  writeFileSync(join(dir, 'next.yml'), withTestShutdown(await withPublicDir('b')))
  writeConfig(dir, await withPublicDir('a'))
  const nav = await startNavigator(t, dir)
  t.equal((await http(nav.address, '/hello.txt')).text, 'from a\n', 'the first configuration')
  const first = await http(nav.address, '/one/page')
  t.equal(first.status, 200, 'the request that started the tenant (and its hook) is served')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded after the hook')
  t.equal((await http(nav.address, '/hello.txt')).text, 'from b\n', 'the configuration the hook wrote')
  t.same(recorded(record).map((entry) => entry.label), ['tenant-start'])
})
