import { readdirSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { test } from 'tap'
import { ANSWERED_UPGRADE_LINGER_MS } from '@navigator/proxy'
import { startSite, tenant, TEST_SHUTDOWN_TIMEOUT } from './helpers.js'
import type { Running } from './helpers.js'
import { parseDuration } from '@navigator/config'
import { HEADERS_TIMEOUT_MS } from '../src/http-server.js'

// Clients that never close their side (issue 18, items 1, 2 and 5), against the real navigator process: a socket
// answered with plain HTTP, whether a refused upgrade or a client error, is released by Navigator itself, and a
// SIGTERM is not held up by such sockets.

async function site (t: Parameters<typeof startSite>[0]): Promise<Running> {
  return await startSite(t, { tenants: [tenant('app', '/app', 'start: eager')] }, { warm: ['/app/warm-up'] })
}

interface Held {
  socket: Socket
  /** Everything received so far. */
  received: () => string
  /** Resolves when Navigator has closed the connection (its FIN, or a reset). */
  closed: Promise<void>
}

/** Opens a connection, sends `bytes`, and never ends or closes it from this side. */
function hold (navigator: Running, bytes: string): Held {
  const url = new URL(navigator.address)
  const socket = connect(Number(url.port), url.hostname)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.on('error', () => {})
  // A half-closed socket would answer Navigator's FIN with its own by default: this client does not.
  socket.on('end', () => {})
  ;(socket as Socket & { allowHalfOpen: boolean }).allowHalfOpen = true
  const closed = new Promise<void>((resolve) => { socket.once('end', resolve); socket.once('close', () => { resolve() }) })
  socket.write(bytes, 'latin1')
  return { socket, received: () => Buffer.concat(chunks).toString('latin1'), closed }
}

function descriptors (pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/**
 * Resolves true once Navigator holds at most `limit` descriptors, false after `ms`. A socket Navigator half-closed
 * and forgot is invisible to the client (it has our FIN already): only the server's descriptors show it, and /proc
 * has no event to wait for, so it is read every 50 ms, within a bound.
 */
async function descriptorsFallTo (pid: number, limit: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (descriptors(pid) > limit) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return true
}

async function within<T> (promise: Promise<T>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, ms) })
  const result = await Promise.race([promise.then(() => true as const), late])
  clearTimeout(timer)
  return result
}

const UPGRADE = (path: string, method = 'GET'): string =>
  `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`

test('a client error is answered and its connection released, though the client never closes', async (t) => {
  const navigator = await site(t)
  const pid = navigator.child.pid as number
  const before = descriptors(pid)
  const held = Array.from({ length: 50 }, () => hold(navigator, 'GARBAGE / HTTP/1.1\r\n\r\n'))
  t.teardown(() => { for (const each of held) each.socket.destroy() })
  t.ok(await within(Promise.all(held.map(async (each) => await each.closed)), 3_000), 'each connection was ended by Navigator')
  t.ok(held.every((each) => each.received().startsWith('HTTP/1.1 400 ')), 'each got its 400 first')
  t.ok(await descriptorsFallTo(pid, before + 2, 1_000), `descriptors back to the idle level within 1 s (${before} before, ${descriptors(pid)} now)`)
})

test('an upgrade answered with plain HTTP is released after the linger time, though the client never closes', async (t) => {
  const navigator = await site(t)
  const pid = navigator.child.pid as number
  const before = descriptors(pid)
  const held = Array.from({ length: 20 }, () => hold(navigator, UPGRADE('/nowhere')))
  t.teardown(() => { for (const each of held) each.socket.destroy() })
  t.ok(await within(Promise.all(held.map(async (each) => await each.closed)), 3_000), 'each connection was ended by Navigator')
  t.ok(held.every((each) => each.received().startsWith('HTTP/1.1 404 ')), 'each got its 404, never a 101')
  const limit = ANSWERED_UPGRADE_LINGER_MS + 1_000
  t.ok(await descriptorsFallTo(pid, before + 2, limit), `descriptors back to the idle level within ${limit} ms (${before} before, ${descriptors(pid)} now)`)
})

test('an upgrade that is not a GET is refused with 400 and never reaches the app', async (t) => {
  const navigator = await site(t)
  for (const method of ['DELETE', 'POST']) {
    const body = method === 'POST' ? 'x'.repeat(100_000) : ''
    const request = UPGRADE('/app/ws', method).replace('\r\n\r\n', `\r\nContent-Length: ${body.length}\r\n\r\n`) + body
    const held = hold(navigator, request)
    t.teardown(() => { held.socket.destroy() })
    t.ok(await within(held.closed, ANSWERED_UPGRADE_LINGER_MS + 2_000), `${method}: the connection is closed`)
    t.match(held.received(), /^HTTP\/1\.1 400 [^]*an upgrade request must be a GET/, `${method}: 400, saying why`)
  }
  const reached = navigator.logs.filter((line) => typeof line.line === 'string' && line.line.includes('/app/ws'))
  t.same(reached, [], 'the tenant logged no request for it')
})

test('SIGTERM with 200 held refused upgrades, 200 idle connections and held client errors exits within the drain time and 2 s, tenants stopped', async (t) => {
  const navigator = await site(t)
  const held = [
    ...Array.from({ length: 200 }, () => hold(navigator, UPGRADE('/nowhere'))),
    // Idle keep-alive connections: one request answered, then nothing, never closed by the client.
    ...Array.from({ length: 100 }, () => hold(navigator, 'GET /app/idle HTTP/1.1\r\nHost: x\r\n\r\n')),
    // Connections that never send a byte.
    ...Array.from({ length: 100 }, () => hold(navigator, '')),
    ...Array.from({ length: 20 }, () => hold(navigator, 'GARBAGE / HTTP/1.1\r\n\r\n'))
  ]
  t.teardown(() => { for (const each of held) each.socket.destroy() })
  const answered = held.filter((each, i) => i < 300 || i >= 400)
  await within(Promise.all(answered.map(async (each) => await new Promise<void>((resolve) => {
    const check = (): void => { if (each.received().includes('\r\n\r\n')) resolve(); else each.socket.once('data', check) }
    check()
  }))), 10_000)
  const started = Date.now()
  navigator.child.kill('SIGTERM')
  const limit = parseDuration(TEST_SHUTDOWN_TIMEOUT) + 2_000
  t.ok(await within(navigator.exited, limit), `exited within ${limit} ms (took ${Date.now() - started} ms)`)
  t.equal((await navigator.exited).code, 0)
  t.ok(navigator.logs.some((line) => line.msg === 'stopped'), 'the children were stopped before the exit')
})

test('100 connections held after their 408 (headers never finished): descriptors back to the idle level within the header timeout and 1 s', async (t) => {
  const navigator = await site(t)
  const pid = navigator.child.pid as number
  const before = descriptors(pid)
  const opened = Date.now()
  const held = Array.from({ length: 100 }, () => hold(navigator, 'GET /app/slow HTTP/1.1\r\nHost: x\r\nX-Never: finished'))
  t.teardown(() => { for (const each of held) each.socket.destroy() })
  t.ok(await within(Promise.all(held.map(async (each) => await each.closed)), HEADERS_TIMEOUT_MS + 3_000), 'each connection was ended by Navigator')
  t.ok(held.every((each) => each.received().startsWith('HTTP/1.1 408 ')), 'each got a 408 first')
  const deadline = opened + HEADERS_TIMEOUT_MS + 1_000
  t.ok(await descriptorsFallTo(pid, before + 2, Math.max(0, deadline - Date.now())), `descriptors back to the idle level within the header timeout + 1 s (${before} before, ${descriptors(pid)} now)`)
})
