import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request, type IncomingHttpHeaders } from 'node:http'
import { connect, type Socket } from 'node:net'
import { test } from 'tap'
import type { Test } from 'tap'
import { createCookieCodec } from '@navigator/sticky-sessions'
import { freePort, startSite, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// A peer Machine that accepts a connection and then never reads (issue 18, item 6): a stopped process, a hung host.
// A body too large to replay is proxied straight to the Machine in the cookie; a peer that takes no byte of it for
// routes.fly.peer_write_timeout ends the request with 504 at once, instead of holding the upload (and the client)
// for the upstream timeout or longer. A client that is slow to send, to a healthy peer, is never cut by it. A hung
// host, whose connection never completes, has taken no byte of the request: after peer_write_timeout the sticky
// step's fallback_mode answers it (the maintenance page, or the request served here with its whole body), well
// before the connect timeout.

const SECRET = 'frozen-peer-secret'
const codec = createCookieCodec([SECRET])
const SELF = 'm1'
const PEER = 'm2'
const MIB = 1024 * 1024

/** A Machine stand-in in its own process: reads a request body and answers with its size. */
async function peerProcess (t: Test, port: number): Promise<ChildProcess> {
  const source = `require('node:http').createServer((req, res) => {
    let bytes = 0
    req.on('data', (chunk) => { bytes += chunk.length })
    req.on('end', () => { res.end(String(bytes)) })
  }).listen(${port}, '127.0.0.1', () => { console.log('up') })`
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    child.kill('SIGCONT')
    child.kill('SIGKILL')
  })
  await once(child.stdout!, 'data')
  return child
}

/**
 * A hung host on 127.0.0.1: a listener with a listen queue of one, in a stopped process, with its queue filled by
 * connections of this test; the kernel then drops new SYNs, so a connect stays pending (checked here).
 */
async function hungHost (t: Test, port: number): Promise<void> {
  const source = `require('node:net').createServer(() => {}).listen({ port: ${port}, host: '127.0.0.1', backlog: 1 }, () => { console.log('up') })`
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] })
  const held: Socket[] = []
  t.teardown(() => {
    for (const socket of held) socket.destroy()
    child.kill('SIGCONT')
    child.kill('SIGKILL')
  })
  await once(child.stdout!, 'data')
  child.kill('SIGSTOP')
  for (let attempt = 0; attempt < 16; attempt++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    held.push(socket)
    let timer: NodeJS.Timeout | undefined
    const connected = await Promise.race([
      once(socket, 'connect').then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(resolve, 1500, false) })
    ])
    clearTimeout(timer)
    if (!connected) {
      t.pass(`a connect to the hung host stays pending (after ${attempt} queued connections)`)
      return
    }
  }
  throw new Error('the listen queue never filled: connects to a stopped listener still complete on this kernel')
}

/** A Navigator with the peer in its sticky sessions; `warm` paths are asked once (no cookie: served here) first. */
async function machine (t: Test, peerPort: number, sticky: string[] = [], warm: string[] = []): Promise<Running> {
  return await startSite(t, {
    routes: [
      '  fly:',
      '    peer_write_timeout: 1s',
      '    sticky_sessions:',
      '      enabled: true',
      `      secret: ${SECRET}`,
      '      peers:',
      `        ${SELF}: "http://127.0.0.1:1"`,
      `        ${PEER}: "http://127.0.0.1:${peerPort}"`,
      ...sticky.map((line) => `      ${line}`)
    ],
    tenants: [tenant('app', '/app')]
  }, { env: { FLY_MACHINE_ID: SELF, FLY_APP_NAME: 'frozen', FLY_REGION: 'ord' }, warm })
}

interface Upload { status: number, headers: IncomingHttpHeaders, body: string, ms: number }

/** POSTs `total` bytes with the cookie for `machineId`, `chunk` bytes every `everyMs`; the answer may come early. */
async function upload (navigator: Running, total: number, options: { chunk?: number, everyMs?: number, path?: string } = {}): Promise<Upload> {
  const url = new URL(navigator.address)
  const chunk = options.chunk ?? 256 * 1024
  const started = Date.now()
  return await new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      path: options.path ?? '/app/upload',
      method: 'POST',
      agent: false,
      headers: { 'content-length': String(total), cookie: `_navigator_machine=${codec.encode(PEER)}` }
    }, (res) => {
      let body = ''
      res.on('data', (data: Buffer) => { body += data.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: Date.now() - started }) })
    })
    req.on('error', reject)
    let sent = 0
    const pump = (): void => {
      while (sent < total) {
        const size = Math.min(chunk, total - sent)
        sent += size
        const more = req.write(Buffer.alloc(size, 120))
        if (options.everyMs !== undefined) {
          if (sent < total) setTimeout(pump, options.everyMs)
          else req.end()
          return
        }
        if (!more) {
          req.once('drain', pump)
          return
        }
      }
      req.end()
    }
    pump()
  })
}

test('a peer that stops reading a large upload: 504 about peer_write_timeout after it stalls, logged', async (t) => {
  const peerPort = await freePort()
  const peer = await peerProcess(t, peerPort)
  const navigator = await machine(t, peerPort)
  peer.kill('SIGSTOP') // still accepts connections (the kernel does), never reads

  let timer: NodeJS.Timeout | undefined
  const answer = await Promise.race([
    upload(navigator, 32 * MIB),
    new Promise<Upload>((resolve) => { timer = setTimeout(resolve, 20_000, { status: 0, headers: {}, body: 'no answer within 20 s', ms: 20_000 }) })
  ])
  clearTimeout(timer)
  t.equal(answer.status, 504, `the upload was ended with 504 (${answer.body.trim()})`)
  t.ok(answer.ms < 8_000, `promptly: ${answer.ms} ms (peer_write_timeout 1s, after the kernel's buffers filled)`)
  const line = await navigator.waitForLog((entry) => entry.msg === 'upstream stopped taking the request body')
  t.equal(line.upstream, `http://127.0.0.1:${peerPort}`, 'the log names the peer')
})

test('a client that sends slowly to a healthy peer is not cut by the peer write timeout', async (t) => {
  const peerPort = await freePort()
  await peerProcess(t, peerPort)
  const navigator = await machine(t, peerPort)
  // 2 MiB (over the replay limit, so proxied straight to the peer) in 16 pieces, 200 ms apart: 3 s, longer than 1s.
  const answer = await upload(navigator, 2 * MIB, { chunk: 128 * 1024, everyMs: 200 })
  t.equal(answer.status, 200)
  t.equal(answer.body, String(2 * MIB), 'the peer got every byte')
  t.ok(answer.ms >= 2_500, `the upload took its time (${answer.ms} ms)`)
})

// Through flycast (a local stand-in address) the cookie's Machine is not known to be asleep, so fallback_mode decides.
const throughFlycast = (port: number): string[] => ['direct_proxy: flycast', `flycast_url: "http://127.0.0.1:${port}"`]

test('a hung host with fallback_mode maintenance: the maintenance page after peer_write_timeout, cookie kept', async (t) => {
  const peerPort = await freePort()
  await hungHost(t, peerPort)
  const navigator = await machine(t, peerPort, ['fallback_mode: maintenance', ...throughFlycast(peerPort)])
  const answer = await upload(navigator, 2 * MIB)
  t.equal(answer.status, 503, 'the maintenance page')
  t.equal(answer.headers['set-cookie'], undefined, 'the cookie still names the peer')
  t.ok(answer.ms >= 900, `not before peer_write_timeout: ${answer.ms} ms`)
  t.ok(answer.ms < 4_500, `before the 5 s connect timeout: ${answer.ms} ms`)
  const line = await navigator.waitForLog((entry) => entry.msg === 'upstream did not take the connection in time')
  t.equal(line.upstream, `http://127.0.0.1:${peerPort}`, 'the log names the peer')
  await navigator.waitForLog((entry) => entry.msg === 'machine unavailable' && entry.machine === PEER)
})

test('a hung host with fallback_mode route_to_available: served here with its whole body, re-pinned', async (t) => {
  const peerPort = await freePort()
  await hungHost(t, peerPort)
  // The tenant is started first, so that the time below is the fallback's alone, not the tenant's cold start too.
  const navigator = await machine(t, peerPort, ['fallback_mode: route_to_available', ...throughFlycast(peerPort)], ['/app/'])
  // The tenant echoes the body: every byte reaches it, since none was sent to the hung host.
  const answer = await upload(navigator, 2 * MIB, { path: '/app/echo' })
  t.equal(answer.status, 200, 'served by the tenant here')
  t.equal(answer.body.length, 2 * MIB, 'the whole body reached the tenant')
  t.ok(answer.ms < 4_500, `before the 5 s connect timeout: ${answer.ms} ms`)
  const cookie = String(answer.headers['set-cookie'] ?? '')
  const value = /_navigator_machine=([^;]+)/.exec(cookie)?.[1]
  t.equal(value === undefined ? null : codec.decode(value), SELF, 'the cookie now names this Machine')
  await navigator.waitForLog((entry) => entry.msg === 'upstream did not take the connection in time')
})
