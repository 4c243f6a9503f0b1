import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { test } from 'tap'
import { HEADERS_TIMEOUT_MS, CONNECTIONS_CHECK_INTERVAL_MS } from '../src/http-server.js'
import { http, startNavigator, tempDir } from './helpers.js'

// Hostile input (issue 7): clients that send too much header, or send it too slowly, through the real navigator
// process. They are cut off (431, 408 or a closed socket) and a normal client keeps getting fast answers meanwhile.

const CONFIG = 'server:\n  listen: "127.0.0.1:0"\n  health_check: /up\n'

/** Sends `bytes` on a new connection and resolves with everything the server sent back until it closed. */
async function exchange (address: string, bytes: string | Buffer, timeoutMs = 5_000): Promise<string> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`))
    }, timeoutMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('latin1'))
    })
    socket.end(bytes)
  })
}

test('headers over Node\'s 16 KiB limit get 431, headers just under it are served, and the process lives on', async (t) => {
  const navigator = await startNavigator(t, tempDir({ 'navigator.yml': CONFIG }))
  const over = await exchange(navigator.address, `GET /up HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.match(over, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
  t.notMatch(over, /aaaa/, 'the oversized value is not echoed')

  const manyHeaders = Array.from({ length: 3_000 }, (_, i) => `X-H${i}: v\r\n`).join('')
  const many = await exchange(navigator.address, `GET /up HTTP/1.1\r\nHost: x\r\n${manyHeaders}\r\n`)
  t.match(many, /^HTTP\/1\.1 431 /, 'thousands of small headers over the limit: 431 too')

  const under = await http(navigator.address, '/up', { headers: { 'x-big': 'a'.repeat(15_000) } })
  t.equal(under.status, 200)

  const garbage = await exchange(navigator.address, 'GET /up HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n')
  t.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/)

  t.equal((await http(navigator.address, '/up')).status, 200)
  t.equal(navigator.child.exitCode, null)
})

test('slowloris clients are cut off after the headers timeout while a normal client keeps getting fast answers', async (t) => {
  const navigator = await startNavigator(t, tempDir({ 'navigator.yml': CONFIG }))
  const url = new URL(navigator.address)
  const TRICKLING = 40
  const SILENT = 20
  const sockets: Socket[] = []
  const timers: NodeJS.Timeout[] = []
  t.teardown(() => {
    for (const timer of timers) clearInterval(timer)
    for (const socket of sockets) socket.destroy()
  })

  const startedAt = Date.now()
  const closed: Array<Promise<{ afterMs: number, answer: string }>> = []
  for (let i = 0; i < TRICKLING + SILENT; i++) {
    const socket = connect(Number(url.port), url.hostname)
    sockets.push(socket)
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => {})
    closed.push(new Promise((resolve) => {
      socket.on('close', () => { resolve({ afterMs: Date.now() - startedAt, answer: Buffer.concat(chunks).toString('latin1') }) })
    }))
    if (i < TRICKLING) {
      // A request line, then one more header byte every second, never the blank line that ends the headers.
      socket.write('GET /up HTTP/1.1\r\nHost: x\r\nX-Slow: ')
      const timer = setInterval(() => { if (socket.writable) socket.write('a') }, 1000)
      timers.push(timer)
      socket.on('close', () => { clearInterval(timer) })
    }
  }

  // A normal client, meanwhile, one request every 250 ms until every slow socket is closed.
  let allClosed = false
  const latencies: number[] = []
  const statuses = new Set<number>()
  const normal = (async () => {
    while (!allClosed) {
      const sent = Date.now()
      const answer = await http(navigator.address, '/up')
      latencies.push(Date.now() - sent)
      statuses.add(answer.status)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  })()

  const bound = HEADERS_TIMEOUT_MS + CONNECTIONS_CHECK_INTERVAL_MS + 5_000
  const results = await Promise.race([
    Promise.all(closed),
    new Promise<never>((resolve, reject) => setTimeout(() => { reject(new Error(`slow sockets still open after ${bound} ms`)) }, bound))
  ]).finally(() => { allClosed = true })
  await normal

  for (const [i, { afterMs, answer }] of results.entries()) {
    if (i < TRICKLING) t.match(answer, /^(HTTP\/1\.1 408 Request Timeout\r\n[^]*)?$/, `trickling socket ${i}: 408 or closed`)
    else t.match(answer, /^(HTTP\/1\.1 408 Request Timeout\r\n[^]*)?$/, `silent socket ${i - TRICKLING}: 408 or closed`)
    t.ok(afterMs >= HEADERS_TIMEOUT_MS - 1_000, `socket ${i} was not cut before the headers timeout (${afterMs} ms)`)
  }
  t.same([...statuses], [200], 'the normal client got only 200s')
  t.ok(latencies.length >= 20, `the normal client made ${latencies.length} requests meanwhile`)
  t.ok(Math.max(...latencies) < 2_500, `its slowest answer took ${Math.max(...latencies)} ms`)
  t.equal(navigator.child.exitCode, null)
})
