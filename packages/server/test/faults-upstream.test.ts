// Upstreams that misbehave: one that accepts and never answers, one that dies in the middle of its response, and
// a peer Machine that cannot be reached for the direct proxy. Real navigator processes, real sockets.
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { test } from 'tap'
import { freePort, http, startNavigator, startSite, tempDir, tenant } from './helpers.js'

interface Teardown { teardown (fn: () => unknown): void }

// A standalone server that misbehaves on demand. It counts the sockets that still hold a /hang request, so the test
// can see whether Navigator let go of them after its 504.
const BAD_UPSTREAM = `
import { createServer } from 'node:http'
const hanging = new Set()
const server = createServer((req, res) => {
  if (req.url.startsWith('/bad/hang')) {
    hanging.add(req.socket)
    req.socket.once('close', () => { hanging.delete(req.socket) })
    req.resume()
    return
  }
  if (req.url.startsWith('/bad/truncate')) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1024 * 1024) })
    res.write(Buffer.alloc(64 * 1024, 120), () => { req.socket.destroy() })
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ hanging: hanging.size }))
})
server.keepAliveTimeout = 120000
server.listen(Number(process.argv[2]), '127.0.0.1')
process.on('SIGTERM', () => { process.exit(0) })
`

async function badUpstreamSite (t: Teardown, timeout: string): Promise<Awaited<ReturnType<typeof startNavigator>>> {
  const port = await freePort()
  const dir = tempDir({
    'bad-upstream.mjs': BAD_UPSTREAM,
    'navigator.yml': [
      'server:',
      '  listen: "127.0.0.1:0"',
      'applications:',
      '  standalone_servers:',
      '    - name: bad',
      '      match_path: "/bad/*"',
      '      command: node',
      `      args: [bad-upstream.mjs, "${port}"]`,
      '      working_dir: .',
      `      port: ${port}`,
      ''
    ].join('\n')
  })
  const nav = await startNavigator(t, dir, { NAVIGATOR_UPSTREAM_TIMEOUT: timeout })
  await nav.waitForLog((line) => line.msg === 'standalone server ready')
  return nav
}

interface Partial { status: number, received: number, complete: boolean, error: string | null, ms: number }

/** A GET that reports how far the response got instead of failing; bounded by `limitMs`. */
async function partialGet (address: string, path: string, limitMs: number): Promise<Partial> {
  const url = new URL(address)
  const started = Date.now()
  return await new Promise((resolve, reject) => {
    const limit = setTimeout(() => { req.destroy(); reject(new Error(`${path}: no outcome within ${limitMs} ms`)) }, limitMs)
    const done = (result: Omit<Partial, 'ms'>): void => {
      clearTimeout(limit)
      resolve({ ...result, ms: Date.now() - started })
    }
    const req = request({ host: url.hostname, port: url.port, path, agent: false }, (res) => {
      let received = 0
      res.on('data', (chunk: Buffer) => { received += chunk.length })
      res.on('end', () => { done({ status: res.statusCode ?? 0, received, complete: res.complete, error: null }) })
      res.on('error', (err) => { done({ status: res.statusCode ?? 0, received, complete: false, error: err.message }) })
    })
    req.on('error', (err) => { done({ status: 0, received: 0, complete: false, error: err.message }) })
    req.end()
  })
}

async function hangingCount (address: string): Promise<number> {
  return (JSON.parse((await http(address, '/bad/count')).text) as { hanging: number }).hanging
}

test('an upstream that accepts and never answers: 20 concurrent requests get 504 after the 1 s timeout, and no upstream socket is left open', async (t) => {
  const nav = await badUpstreamSite(t, '1s')
  t.equal(await hangingCount(nav.address), 0)
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await partialGet(nav.address, '/bad/hang', 10_000)))
  t.same(answers.map((a) => a.status), Array(20).fill(504), 'every request got a 504')
  for (const answer of answers) t.ok(answer.ms >= 900 && answer.ms < 5000, `504 after ${answer.ms} ms`)
  const times = answers.map((a) => a.ms)
  t.comment(`hanging upstream: 20 requests, 20 x 504 after ${Math.min(...times)}-${Math.max(...times)} ms`)

  // Navigator closes each timed-out upstream socket; the close reaches the upstream a moment later.
  const deadline = Date.now() + 3000
  let open = await hangingCount(nav.address)
  while (open > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    open = await hangingCount(nav.address)
  }
  t.equal(open, 0, 'the upstream holds no socket of a timed-out request')
  t.equal(nav.child.exitCode, null, 'navigator is still running')
})

test('an invalid NAVIGATOR_UPSTREAM_TIMEOUT is a usage error: exit 2 and the reason', async (t) => {
  const dir = tempDir({ 'navigator.yml': 'server:\n  listen: "127.0.0.1:0"\n' })
  await t.rejects(startNavigator(t, dir, { NAVIGATOR_UPSTREAM_TIMEOUT: 'soon' }), /exited with 2: .*NAVIGATOR_UPSTREAM_TIMEOUT/)
})

test('an upstream that dies mid-body: the client sees an aborted response, never a hang, and Navigator keeps serving', async (t) => {
  const nav = await badUpstreamSite(t, '5s')
  const outcomes = await Promise.all(Array.from({ length: 5 }, async () => await partialGet(nav.address, '/bad/truncate', 10_000)))
  for (const outcome of outcomes) {
    t.equal(outcome.status, 200, 'the headers had been sent')
    t.equal(outcome.complete, false, `the response is incomplete (${outcome.received} of 1048576 bytes, ${String(outcome.error)})`)
    t.ok(outcome.received < 1024 * 1024)
  }
  t.comment(`upstream dying mid-body: 5 responses cut after ${outcomes.map((o) => o.received).join(', ')} of 1048576 bytes (${String(outcomes[0].error)})`)
  const after = await http(nav.address, '/bad/count')
  t.equal(after.status, 200, 'the same upstream is served again')
  t.equal(nav.child.exitCode, null, 'navigator is still running')
})

// Sticky sessions on /app/*, this Machine "here", and a peer "gone" whose address is a closed port.
async function stickySite (t: Teardown, fallbackMode: string): Promise<Awaited<ReturnType<typeof startNavigator>>> {
  const port = await freePort()
  const closedPort = await freePort()
  return await startSite(t, {
    listen: `"127.0.0.1:${port}"`,
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*"]',
      `      fallback_mode: ${fallbackMode}`,
      '      peers:',
      `        here: "http://127.0.0.1:${port}"`,
      `        gone: "http://127.0.0.1:${closedPort}"`
    ],
    tenants: [tenant('app', '/app')]
  }, { env: { FLY_MACHINE_ID: 'here', FLY_APP_NAME: 'faults', FLY_REGION: 'iad' } })
}

interface Upload { status: number, headers: Record<string, unknown>, body: Buffer, requestError: string | null }

/** POSTs `body` (with Content-Length) and resolves with the response even if the server stopped reading the body. */
async function upload (address: string, path: string, body: Buffer, headers: Record<string, string>): Promise<Upload> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    let requestError: string | null = null
    const limit = setTimeout(() => { req.destroy(); reject(new Error('upload: no response within 15 s')) }, 15_000)
    const req = request({ host: url.hostname, port: url.port, path, method: 'POST', agent: false, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        clearTimeout(limit)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), requestError })
      })
    })
    // The server may answer before reading the body and close; the answer still counts.
    req.on('error', (err) => { requestError = err.message })
    req.end(body)
  })
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

test('a 2 MiB upload pinned to an unreachable peer gets a clean, retryable 503 and nothing reaches any app (fallback maintenance)', async (t) => {
  const nav = await stickySite(t, 'maintenance')
  const body = randomBytes(2 * 1024 * 1024)
  const answer = await upload(nav.address, '/app/echo', body, { cookie: '_navigator_machine=gone' })
  t.equal(answer.status, 503)
  t.equal(answer.headers['retry-after'], '5')
  t.equal(answer.headers['cache-control'], 'no-store')
  t.notOk(String(answer.headers['set-cookie'] ?? '').includes('_navigator_machine'), 'the cookie still names the pinned Machine')
  await nav.waitForLog((line) => line.msg === 'machine unavailable' && line.machine === 'gone')
  t.notOk(nav.logs.some((line) => line.process === 'app'), 'the local tenant never started: no byte was half-delivered anywhere')

  const again = await upload(nav.address, '/app/echo', body, {})
  t.equal(again.status, 200, 'the retry without the pinned cookie is served')
  t.equal(sha256(again.body), sha256(body), 'and its body arrives complete')
})

test('a 2 MiB upload pinned to an unreachable peer that discovery still lists: 503 and the cookie kept, even with route_to_available', async (t) => {
  // The peer may be asleep (a stopped or suspended Machine has no private address): moving the user off the Machine
  // that holds their data because it slept would be worse than a retry. direct_proxy: flycast would wake it.
  const nav = await stickySite(t, 'route_to_available')
  const body = randomBytes(2 * 1024 * 1024)
  const answer = await upload(nav.address, '/app/echo', body, { cookie: '_navigator_machine=gone' })
  t.equal(answer.status, 503)
  t.equal(answer.headers['retry-after'], '5')
  t.notOk(String(answer.headers['set-cookie'] ?? '').includes('_navigator_machine'), 'the cookie still names the pinned Machine')
  const line = await nav.waitForLog((entry) => entry.msg === 'machine unavailable' && entry.machine === 'gone')
  t.match(String(line.hint), 'direct_proxy: flycast', 'the warn line says how to wake it')
  t.notOk(nav.logs.some((entry) => entry.process === 'app'), 'nothing was half-delivered here either')
})
