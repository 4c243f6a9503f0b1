import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { test } from 'tap'
import { MAX_REPLAY_BODY_BYTES } from '@navigator/fly-replay'
import { replayWith, request, sha256, spec, startEdge, startTestMachine } from './fixtures.js'

test('a body of 1 MB is buffered and replayed intact', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)] })
  const body = Buffer.alloc(MAX_REPLAY_BODY_BYTES, 7)
  let seen = (await request(edge.url, { method: 'POST', body })).json()
  if (seen.machine === 'm2' && seen.headers['fly-replay-src'] === undefined) {
    seen = (await request(edge.url, { method: 'POST', body })).json()
  }
  t.equal(seen.machine, 'm2')
  t.ok(seen.headers['fly-replay-src'])
  t.equal(seen.bodyLength, body.length)
  t.equal(seen.bodySha256, sha256(body))
})

test('a body over 1 MB is streamed to the first Machine and its replay answer is refused with a 502', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2'))
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)] })
  const body = Buffer.alloc(2 * MAX_REPLAY_BODY_BYTES, 1)
  const reply = await request(edge.url, { method: 'POST', body })
  t.equal(reply.status, 502)
  t.equal(reply.headers['fly-edge-error'], 'NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE')
  t.match(reply.body, /over 1 MB \(1,000,000 bytes\)/)
  t.equal(m1.received[0].bodySha256, sha256(body), 'the first Machine received the whole body, streamed')
})

test('a large body is streamed through to a Machine that serves it', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)] })
  const body = Buffer.alloc(3 * MAX_REPLAY_BODY_BYTES, 2)
  const seen = (await request(edge.url, { method: 'PUT', body })).json()
  t.equal(seen.bodyLength, body.length)
  t.equal(seen.bodySha256, sha256(body))
})

test('a chunked body of unknown length is not replayable', async (t) => {
  const m1 = await startTestMachine(t, 'm1', replayWith('instance=m2'))
  const m2 = await startTestMachine(t, 'm2')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1), spec(m2)] })
  await edge.stopMachine('m2')
  const reply = await request(edge.url, {
    method: 'POST',
    headers: { 'transfer-encoding': 'chunked' },
    body: Readable.from([Buffer.from('small '), Buffer.from('chunks')])
  })
  t.equal(reply.status, 502)
  t.equal(reply.headers['fly-edge-error'], 'NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE')
  t.equal(m1.received[0].bodyLength, 12)
  t.equal(m2.received.length, 0)
})

test('a chunked body reaches a Machine that serves it', async (t) => {
  const m1 = await startTestMachine(t, 'm1')
  const edge = await startEdge(t, { app: 'demo', machines: [spec(m1)] })
  const seen = (await request(edge.url, {
    method: 'POST',
    headers: { 'transfer-encoding': 'chunked' },
    body: Readable.from([Buffer.from('small '), Buffer.from('chunks')])
  })).json()
  t.equal(seen.bodyLength, 12)
  t.equal(seen.headers['transfer-encoding'], 'chunked')
})

test('the rest of a refused upload is read for at most 10 s: a client that never stops sending is then cut off', async (t) => {
  // A Machine that answers with a replay as soon as the headers arrive, without reading the body.
  const machine = http.createServer((req, res) => {
    res.writeHead(307, { 'fly-replay': 'instance=m2' })
    res.end()
  })
  await new Promise<void>((resolve) => machine.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { machine.closeAllConnections(); machine.close() })
  const url = `http://127.0.0.1:${(machine.address() as AddressInfo).port}`
  const edge = await startEdge(t, { app: 'demo', machines: [{ id: 'm1', url, region: 'iad' }] })

  const client = net.connect(edge.port, '127.0.0.1')
  t.teardown(() => { client.destroy() })
  let answer = ''
  client.on('data', (chunk: Buffer) => { answer += chunk.toString() })
  client.on('error', () => {})
  const closed = new Promise<number>((resolve) => { client.once('close', () => { resolve(Date.now()) }) })
  client.write('POST /upload HTTP/1.1\r\nHost: demo\r\nTransfer-Encoding: chunked\r\n\r\n')
  // An endless body: 64 KiB every 50 ms until the connection is gone.
  const chunk = Buffer.alloc(65_536, 1)
  const sending = setInterval(() => { if (client.writable) client.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`) }, 50)
  t.teardown(() => { clearInterval(sending) })

  const started = Date.now()
  while (!answer.includes('\r\n\r\n') && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(answer, /^HTTP\/1\.1 502 /, 'the refusal is answered while the client still sends')
  t.match(answer, /fly-edge-error: NAV_FLY_EDGE_REPLAY_BODY_TOO_LARGE/i)
  const answeredAt = Date.now()
  const end = await Promise.race([closed, new Promise<null>((resolve) => setTimeout(() => { resolve(null) }, 20_000))])
  t.not(end, null, 'the edge closed the connection')
  t.ok(end !== null && end - answeredAt >= 8_000, 'after reading the rest for a while, not at once')
})
