import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type Socket } from 'node:net'
import { test } from 'tap'
import { ANSWERED_UPGRADE_LINGER_MS } from '@navigator/proxy'
import { http, startSite, tempDir, tenant, TEST_SHUTDOWN_TIMEOUT } from './helpers.js'
import type { Running } from './helpers.js'
import { parseDuration } from '@navigator/config'
import { HEADERS_TIMEOUT_MS } from '../src/http-server.js'

// Clients that never close their side (issue 18, items 1, 2 and 5), against the real navigator process: a socket
// answered with plain HTTP, whether a refused upgrade or a client error, is released by Navigator itself, and a
// SIGTERM is not held up by such sockets.

/** A site with one tenant, which appends "<pid> SIGTERM" to `signalFile` (when given) if stopped with SIGTERM. */
async function site (t: Parameters<typeof startSite>[0], signalFile?: string): Promise<Running> {
  const env = signalFile === undefined ? [] : [`env: { TENANT_SIGNAL_FILE: ${JSON.stringify(signalFile)} }`]
  return await startSite(t, { tenants: [tenant('app', '/app', 'start: eager', ...env)] }, { warm: ['/app/warm-up'] })
}

interface Held {
  socket: Socket
  /** Everything received so far. */
  received: () => string
  /** Resolves when Navigator has closed the connection (its FIN, or a reset). */
  closed: Promise<void>
}

/**
 * Opens a connection, sends `bytes`, and never closes it from this side; `halfClose` sends the client's FIN after
 * the bytes (the client still reads, and never closes its socket).
 */
function hold (navigator: Running, bytes: string, halfClose = false): Held {
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
  if (halfClose) socket.end()
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
  // Among them, clients that sent their FIN after the request: Navigator still closes its side and lets go.
  const held = Array.from({ length: 20 }, (_, i) => hold(navigator, UPGRADE('/nowhere'), i % 4 === 0))
  t.teardown(() => { for (const each of held) each.socket.destroy() })
  t.ok(await within(Promise.all(held.map(async (each) => await each.closed)), 3_000), 'each connection was ended by Navigator')
  t.ok(held.every((each) => each.received().startsWith('HTTP/1.1 404 ')), 'each got its 404, never a 101')
  const limit = ANSWERED_UPGRADE_LINGER_MS + 1_000
  t.ok(await descriptorsFallTo(pid, before + 2, limit), `descriptors back to the idle level within ${limit} ms (${before} before, ${descriptors(pid)} now)`)
})

test('an upgrade that is not a GET is refused with 400 and never reaches the app; a 2 MiB body does not hold its socket', async (t) => {
  const navigator = await site(t)
  const pid = navigator.child.pid as number
  const before = descriptors(pid)
  for (const method of ['DELETE', 'POST']) {
    // The case: a POST that carries `Upgrade:` and a 2 MiB body.
    const body = method === 'POST' ? 'x'.repeat(2 * 1024 * 1024) : ''
    const request = UPGRADE('/app/ws', method).replace('\r\n\r\n', `\r\nContent-Length: ${body.length}\r\n\r\n`) + body
    const held = hold(navigator, request)
    t.teardown(() => { held.socket.destroy() })
    t.ok(await within(held.closed, ANSWERED_UPGRADE_LINGER_MS + 2_000), `${method}: the connection is closed`)
    t.match(held.received(), /^HTTP\/1\.1 400 [^]*an upgrade request must be a GET/, `${method}: 400, saying why`)
  }
  const reached = navigator.logs.filter((line) => typeof line.line === 'string' && line.line.includes('/app/ws'))
  t.same(reached, [], 'the tenant logged no request for it')
  t.ok(await descriptorsFallTo(pid, before + 2, ANSWERED_UPGRADE_LINGER_MS + 1_000), `their descriptors were released (${before} before, ${descriptors(pid)} now)`)
})

test('SIGTERM with 200 held refused upgrades, 200 idle connections and held client errors exits within the drain time and 2 s, tenants stopped', async (t) => {
  const signalFile = join(tempDir({}), 'tenant-signals')
  const navigator = await site(t, signalFile)
  const tenantPid = (JSON.parse((await http(navigator.address, '/app/pid')).text) as { pid: number }).pid
  const pid = navigator.child.pid as number
  const before = descriptors(pid)
  const halfClosed = (i: number): boolean => i % 10 === 0
  const held = [
    // Idle keep-alive connections: one request answered, then nothing.
    ...Array.from({ length: 100 }, (_, i) => hold(navigator, 'GET /app/idle HTTP/1.1\r\nHost: x\r\n\r\n', halfClosed(i))),
    // Connections that never send a byte.
    ...Array.from({ length: 100 }, () => hold(navigator, '')),
    ...Array.from({ length: 20 }, () => hold(navigator, 'GARBAGE / HTTP/1.1\r\n\r\n')),
    // Last, as they are released after ANSWERED_UPGRADE_LINGER_MS.
    ...Array.from({ length: 200 }, (_, i) => hold(navigator, UPGRADE('/nowhere'), halfClosed(i)))
  ]
  t.teardown(() => { for (const each of held) each.socket.destroy() })
  const idle = held.slice(0, 100)
  const upgrades = held.slice(220)
  // A tenth of the idle and upgrade connections sent the client's FIN after their request: Navigator lets them go
  // (an upgrade after its answer; a request whose client left is abandoned, as Node does by default).
  const finSent = [...idle, ...upgrades].filter((_, i) => halfClosed(i))
  // The refused upgrades (180 without a FIN) last.
  const kept = [...idle.filter((_, i) => !halfClosed(i)), ...held.slice(100, 200), ...upgrades.filter((_, i) => !halfClosed(i))]
  let keptClosed = 0
  for (const each of kept.slice(0, kept.length - 180)) void each.closed.then(() => { keptClosed++ })
  const opened = Date.now()
  const answered = [...idle.filter((_, i) => !halfClosed(i)), ...held.slice(200, 220), ...upgrades]
  t.ok(await within(Promise.all(answered.map(async (each) => await new Promise<void>((resolve) => {
    const check = (): void => { if (each.received().includes('\r\n\r\n')) resolve(); else each.socket.once('data', check) }
    check()
  }))), 10_000), `the ${answered.length} connections expecting an answer got it (${Date.now() - opened} ms)`)
  t.ok(await within(Promise.all(finSent.map(async (each) => await each.closed)), 3_000), `the ${finSent.length} connections whose client sent its FIN were closed by Navigator`)
  // Held means still open: every other connection must still be there when the signal comes.
  // Held means still open on Navigator's side: a refused upgrade has had Navigator's FIN already (it lingers for the
  // client's), so its descriptor is what says it is still there. Every held connection is one in Navigator's table.
  t.equal(keptClosed, 0, `none of the ${kept.length - 180} idle and silent connections was closed before SIGTERM`)
  const extra = descriptors(pid) - before
  t.ok(extra >= kept.length, `Navigator held ${extra} more descriptors than at rest at SIGTERM, ${kept.length} held connections (${Date.now() - opened} ms after opening)`)
  const started = Date.now()
  navigator.child.kill('SIGTERM')
  const limit = parseDuration(TEST_SHUTDOWN_TIMEOUT) + 2_000
  t.ok(await within(navigator.exited, limit), `exited within ${limit} ms (took ${Date.now() - started} ms)`)
  t.equal((await navigator.exited).code, 0)
  t.ok(navigator.logs.some((line) => line.msg === 'stopped'), 'the children were stopped before the exit')
  t.equal(readFileSync(signalFile, 'utf8'), `${tenantPid} SIGTERM\n`, 'the tenant was stopped with SIGTERM (not SIGKILL), once')
  t.throws(() => process.kill(tenantPid, 0), { code: 'ESRCH' }, 'and its process is gone')
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
