import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { Readable } from 'node:stream'
import { test } from 'tap'
import WebSocket from 'ws'
import { http, siteConfig, startNavigator, startSite, tempDir, tenant } from './helpers.js'
import type { LogLine } from './helpers.js'

async function tenantsConfig (): Promise<string> {
  return tempDir({
    'navigator.yml': await siteConfig({
      applications: ['  startup_timeout: 20s', '  env:', '    SHARED: "shared-${tenant_id}"'],
      tenants: [
        tenant('alpha', '/alpha', 'var: { tenant_id: a }', 'env:', '  TENANT_GREETING: "hello ${tenant_id} on ${PORT}"'),
        tenant('sleepy', '/sleepy', 'var: { tenant_id: s }', 'env:', '  READY_DELAY_MS: "10000"')
      ]
    })
  })
}

interface TenantView { pid: number, port: number, url: string, headers: Record<string, string>, env: Record<string, string> }

test('a tenant starts on its first request, sees PORT and its substituted env, and gets X-Forwarded-* headers', async (t) => {
  // As on Fly (FLY_MACHINE_ID set), where the edge's X-Forwarded-For is trusted and appended to; off Fly a client's
  // is replaced (forwarded-headers.test.ts).
  const nav = await startNavigator(t, await tenantsConfig(), { FLY_MACHINE_ID: 'm1' })
  const answer = await http(nav.address, '/alpha/page?x=1', { headers: { 'x-forwarded-for': '203.0.113.9' } })
  t.equal(answer.status, 200, answer.text)
  const view = JSON.parse(answer.text) as TenantView
  t.equal(view.url, '/alpha/page?x=1', 'the full path and query reach the tenant')
  t.equal(view.env.TENANT_GREETING, `hello a on ${view.port}`)
  t.equal(view.env.SHARED, 'shared-a')
  t.match(view.headers['x-forwarded-for'], /^203\.0\.113\.9, 127\.0\.0\.1$/)
  t.equal(view.headers['x-forwarded-proto'], 'http')
  t.ok(view.headers['x-forwarded-host'])
  t.ok(view.headers['x-request-id'])
  t.same(answer.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/'], 'upstream cookies stay separate headers')
})

test('a tenant killed with SIGKILL is started again on the next request', async (t) => {
  const nav = await startNavigator(t, await tenantsConfig())
  const before = JSON.parse((await http(nav.address, '/alpha/')).text) as TenantView
  process.kill(before.pid, 'SIGKILL')
  await nav.waitForLog((line) => line.process === 'alpha' && /exited unexpectedly/.test(String(line.msg)))
  const again = await http(nav.address, '/alpha/')
  t.equal(again.status, 200)
  const after = JSON.parse(again.text) as TenantView
  t.not(after.pid, before.pid, 'a new process answers')
})

test('a tenant that is slow to become ready never blocks another one', async (t) => {
  const nav = await startNavigator(t, await tenantsConfig())
  const started = Date.now()
  const sleepy = http(nav.address, '/sleepy/')
  await nav.waitForLog((line) => line.process === 'sleepy' && line.msg === 'tenant starting')
  const alpha = await http(nav.address, '/alpha/')
  t.equal(alpha.status, 200)
  // Waiting for the slow one would take its 10 s READY_DELAY_MS; a loaded machine may take a few seconds anyway.
  t.ok(Date.now() - started < 8000, `the other tenant answered in ${Date.now() - started} ms, while the slow one boots`)
  const slow = await sleepy
  t.equal(slow.status, 200, 'the slow tenant answers once ready')
  t.ok(Date.now() - started >= 9000, 'the slow tenant really was slow')
})

test('a 5 MiB POST body streams to a tenant and back byte-identical', async (t) => {
  const nav = await startNavigator(t, await tenantsConfig())
  const body = randomBytes(5 * 1024 * 1024)
  const url = new URL(nav.address)
  const echoed = await new Promise<Buffer>((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: '/alpha/echo',
      headers: { 'content-type': 'application/json' } // a type Fastify would parse (and limit) if it parsed bodies
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { resolve(Buffer.concat(chunks)) })
    })
    req.on('error', reject)
    // Chunked, in 64 KiB pieces: the proxy never sees the whole body at once.
    Readable.from((function * () {
      for (let i = 0; i < body.length; i += 65536) yield body.subarray(i, i + 65536)
    })()).pipe(req)
  })
  t.equal(echoed.length, body.length)
  t.equal(createHash('sha256').update(echoed).digest('hex'), createHash('sha256').update(body).digest('hex'))
})

test('an upstream that refuses connections answers 502 promptly', async (t) => {
  const nav = await startNavigator(t, await tenantsConfig())
  t.equal((await http(nav.address, '/alpha/stop-listening')).status, 200)
  const started = Date.now()
  const answer = await http(nav.address, '/alpha/after')
  t.equal(answer.status, 502)
  t.ok(Date.now() - started < 2000, 'promptly')
})

test('a WebSocket to a tenant is proxied, and keeps the tenant from its idle stop until it closes', async (t) => {
  const nav = await startSite(t, { applications: ['  idle_timeout: 1s'], tenants: [tenant('app', '/app')] })
  const ws = new WebSocket(nav.address.replace(/^http/, 'ws') + '/app/cable')
  t.teardown(() => { ws.terminate() })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send('to the tenant')
  const echo = await new Promise<string>((resolve) => { ws.once('message', (data: Buffer) => { resolve(data.toString()) }) })
  t.equal(echo, 'to the tenant')

  const idleStop = (line: LogLine): boolean => line.process === 'app' && /idle/.test(String(line.msg))
  await t.rejects(nav.waitForLog(idleStop, 2500), 'not stopped while its WebSocket is open (2.5 s > idle_timeout)')
  ws.close()
  await nav.waitForLog(idleStop, 5000)
  t.pass('stopped once idle without a WebSocket')
})

test('a WebSocket client that leaves while its tenant starts is not counted as open (the tenant still idles out)', async (t) => {
  const nav = await startSite(t, { applications: ['  idle_timeout: 1s'], tenants: [tenant('app', '/app', 'env: { READY_DELAY_MS: "1500" }')] })
  const ws = new WebSocket(nav.address.replace(/^http/, 'ws') + '/app/cable')
  ws.on('error', () => {})
  await nav.waitForLog((line) => line.process === 'app' && line.msg === 'tenant starting')
  ws.terminate()
  await nav.waitForLog((line) => line.process === 'app' && line.msg === 'tenant ready')
  await nav.waitForLog((line) => line.process === 'app' && /idle/.test(String(line.msg)), 5000)
  t.pass('the tenant was stopped for idleness')
})
