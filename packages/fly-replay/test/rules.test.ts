import { test, type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Agent, request } from 'undici'
import type { ReplayRule } from '@navigator/config'
import { createMaintenanceResponder } from '@navigator/proxy'
import { flyReplayRules, type FlyReplayRulesOptions } from '../src/index.js'

const maintenance = createMaintenanceResponder('maintenance')

const rules: ReplayRule[] = [
  { path: /^\/api\//, target: { kind: 'region', regions: ['ord'] }, status: 307, methods: ['GET', 'HEAD'] },
  { path: /^\/multi\//, target: { kind: 'region', regions: ['sjc', 'any'] }, status: 409, methods: null },
  { path: /^\/pdf\//, target: { kind: 'app', app: 'pdf-worker' }, status: 307, methods: null },
  { path: /^\/pinned\//, target: { kind: 'machine', machine: 'm9' }, status: 307, methods: null }
]

async function build (t: Test, extra: Partial<FlyReplayRulesOptions> = {}) {
  const app = Fastify()
  await app.register(flyReplayRules, {
    rules, machineId: 'm1', appName: 'web', region: 'iad', port: 3000, maintenance, ...extra
  })
  app.all('/*', async () => 'served here')
  t.teardown(async () => await app.close())
  await app.ready()
  return app
}

test('the first matching rule answers with its fly-replay header, status and a tiny body', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/api/v1/things?x=1' })
  t.equal(res.statusCode, 307)
  t.equal(res.headers['fly-replay'], 'region=ord;state=nav-rule')
  t.ok(res.body.length < 64)
  const multi = await app.inject({ url: '/multi/x', method: 'POST', payload: 'a=1' })
  t.equal(multi.statusCode, 409)
  t.equal(multi.headers['fly-replay'], 'region="sjc,any";state=nav-rule')
  t.equal((await app.inject('/pdf/1')).headers['fly-replay'], 'app=pdf-worker;state=nav-rule')
  t.equal((await app.inject('/pinned/1')).headers['fly-replay'], 'instance=m9;state=nav-rule')
})

test('rules match the original path only, and their methods', async (t) => {
  const app = await build(t)
  t.equal((await app.inject('/other/api/')).body, 'served here')
  t.equal((await app.inject('/x?next=/api/')).body, 'served here', 'the query string is not part of the path')
  t.equal((await app.inject({ url: '/api/items', method: 'POST' })).body, 'served here', 'methods are honoured')
})

test('a rule this Machine already satisfies is skipped so nothing bounces twice', async (t) => {
  const inOrd = await build(t, { region: 'ord' })
  t.equal((await inOrd.inject('/api/x')).body, 'served here')
  const inWorker = await build(t, { appName: 'pdf-worker' })
  t.equal((await inWorker.inject('/pdf/x')).body, 'served here')
  const onM9 = await build(t, { machineId: 'm9' })
  t.equal((await onM9.inject('/pinned/x')).body, 'served here')
  const app = await build(t)
  const replayed = await app.inject({ url: '/multi/x', headers: { 'fly-replay-src': 'instance=m1;region=iad;t=1;state=nav-rule' } })
  t.equal(replayed.body, 'served here', 'a request replayed by a rule is served wherever it lands')
  const foreign = await app.inject({ url: '/multi/x', headers: { 'fly-replay-src': 'instance=m1;state=other' } })
  t.equal(foreign.statusCode, 409, 'another replay state does not count')
})

test('a request carrying fly-replay-failed gets the maintenance page', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/api/x', headers: { 'fly-replay-failed': 'instance=x;reason=timeout' } })
  t.equal(res.statusCode, 503)
  t.equal(res.body, 'maintenance')
  t.equal(res.headers['fly-replay'], undefined)
})

test('a request that cannot be replayed is proxied to the target with its body streamed', async (t) => {
  const seen: http.IncomingHttpHeaders[] = []
  const upstream = http.createServer((req, res) => {
    seen.push(req.headers)
    const hash = createHash('sha256')
    req.on('data', (chunk: Buffer) => hash.update(chunk))
    req.on('end', () => res.end(`${req.url} ${hash.digest('hex')}`))
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const targets: unknown[] = []
  const app = Fastify()
  await app.register(flyReplayRules, {
    rules,
    machineId: 'm1',
    appName: 'web',
    region: 'iad',
    port: 3000,
    maintenance,
    resolveAddress: (target) => { targets.push(target); return origin }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Agent()
  t.teardown(async () => {
    await client.close()
    await app.close()
    await new Promise((resolve) => upstream.close(resolve))
  })
  const body = randomBytes(1_000_001)
  const res = await request(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/multi/upload`, {
    dispatcher: client, method: 'POST', body, headers: { 'x-navigator-via': 'forged' }
  })
  t.equal(res.statusCode, 503, 'a request that claims to have been proxied once already is not proxied again')
  await res.body.text()
  const proxied = await request(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/multi/upload`, {
    dispatcher: client, method: 'POST', body
  })
  t.equal(proxied.statusCode, 200, '1,000,001 bytes: proxied')
  t.equal(proxied.headers['fly-replay'], undefined)
  t.equal(await proxied.body.text(), `/multi/upload ${createHash('sha256').update(body).digest('hex')}`)
  t.same(targets[1], { kind: 'region', regions: ['sjc', 'any'] })
  t.equal(seen.length, 1, 'the target saw one request')
  t.equal(seen[0]['x-navigator-via'], 'm1', 'marked with this Machine, so the target never sends it on')
})

test('a body up to max_replay_body (1,000,000 bytes by default) is replayed, one byte more is not', async (t) => {
  const app = await build(t, { resolveAddress: () => null })
  const at = await app.inject({ url: '/multi/x', method: 'POST', payload: Buffer.alloc(1_000_000) })
  t.equal(at.statusCode, 409)
  t.equal(at.headers['fly-replay'], 'region="sjc,any";state=nav-rule')
  const over = await app.inject({ url: '/multi/x', method: 'POST', payload: Buffer.alloc(1_000_001) })
  t.equal(over.statusCode, 503, 'over the limit and no private address: maintenance, never a replay')
  t.equal(over.headers['fly-replay'], undefined)
  const small = await build(t, { maxReplayBody: 10, resolveAddress: () => null })
  t.equal((await small.inject({ url: '/multi/x', method: 'POST', payload: '0123456789' })).statusCode, 409)
  t.equal((await small.inject({ url: '/multi/x', method: 'POST', payload: '0123456789a' })).statusCode, 503)
})

test('x-navigator-via: never replayed or proxied again; served when this Machine is the target', async (t) => {
  const app = await build(t)
  const marked = { 'x-navigator-via': 'm7' }
  const small = await app.inject({ url: '/api/x', headers: marked })
  t.equal(small.statusCode, 503, 'this Machine (iad) cannot serve a rule for ord: maintenance')
  t.equal(small.headers['fly-replay'], undefined)
  const onM9 = await build(t, { machineId: 'm9' })
  t.equal((await onM9.inject({ url: '/pinned/x', headers: marked })).body, 'served here')
  t.equal((await app.inject({ url: '/other', headers: marked })).body, 'served here', 'paths no rule matches are left alone')
})

test('an unreachable target of the direct proxy gets the maintenance page', async (t) => {
  const closed = http.createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
  await new Promise((resolve) => closed.close(resolve))
  const app = await build(t, { resolveAddress: () => origin })
  const res = await app.inject({ url: '/pdf/upload', method: 'POST', headers: { 'transfer-encoding': 'chunked' }, payload: 'x'.repeat(1000) })
  t.equal(res.statusCode, 503)
  t.equal(res.body, 'maintenance')
})

test('options are validated at registration', async (t) => {
  const cases: Array<[Partial<FlyReplayRulesOptions>, RegExp]> = [
    [{ rules: 'x' as unknown as ReplayRule[] }, /rules/],
    [{ maintenance: undefined as unknown as FlyReplayRulesOptions['maintenance'] }, /maintenance/],
    [{ port: 0 }, /port/],
    [{ maxReplayBody: -1 }, /maxReplayBody/],
    [{ maxReplayBody: 1.5 }, /maxReplayBody/],
    [{ machineId: 'Bad Id' }, /machineId/],
    [{ region: 'ORD!' }, /region/],
    [{ rules: [{ ...rules[0], status: 99 }] }, /status/],
    [{ rules: [{ ...rules[0], target: { kind: 'machine', machine: 'NOPE;x' } }] }, /instance/]
  ]
  for (const [extra, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => {
      await app.register(flyReplayRules, {
        rules, machineId: 'm1', appName: 'web', region: 'iad', port: 3000, maintenance, ...extra
      }).ready()
    }, { message, code: 'NAV_FLY_REPLAY_INVALID_OPTION' }, String(message))
    await app.close()
  }
})
