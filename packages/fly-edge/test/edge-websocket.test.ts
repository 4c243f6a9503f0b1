import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import type { RouteEvent } from '../src/edge.js'
import { startEdge } from './fixtures.js'

interface WsMachine { id: string, url: string, upgrades: http.IncomingHttpHeaders[] }

/** A Machine whose WebSocket server greets with its id; `replay` answers un-replayed upgrades with fly-replay. */
async function startWsMachine (t: { teardown (fn: () => unknown): void }, id: string, replay?: string): Promise<WsMachine> {
  const server = http.createServer((req, res) => { res.writeHead(404); res.end() })
  const wss = new WebSocketServer({ noServer: true })
  const machine: WsMachine = { id, url: '', upgrades: [] }
  server.on('upgrade', (req, socket, head) => {
    machine.upgrades.push(req.headers)
    if (replay !== undefined && req.headers['fly-replay-src'] === undefined) {
      socket.end(`HTTP/1.1 307 Temporary Redirect\r\nfly-replay: ${replay}\r\ncontent-length: 0\r\n\r\n`)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(`hello from ${id}`)
      ws.on('message', (data) => ws.send(`${id} echo ${String(data)}`))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  machine.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => new Promise<void>((resolve) => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  return machine
}

function open (url: string): Promise<{ ws: WebSocket, messages: string[], next: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const messages: string[] = []
    const waiters: Array<(m: string) => void> = []
    ws.on('message', (data) => {
      const waiter = waiters.shift()
      if (waiter !== undefined) waiter(String(data))
      else messages.push(String(data))
    })
    const next = (): Promise<string> => {
      const queued = messages.shift()
      if (queued !== undefined) return Promise.resolve(queued)
      return new Promise((resolve) => waiters.push(resolve))
    }
    ws.once('open', () => resolve({ ws, messages, next }))
    ws.once('error', reject)
  })
}

test('a WebSocket upgrade passes through to a balanced Machine, both ways', async (t) => {
  const a = await startWsMachine(t, 'a')
  const b = await startWsMachine(t, 'b')
  const edge = await startEdge(t, { app: 'demo', machines: [{ id: 'a', url: a.url }, { id: 'b', url: b.url }] })
  const greeted = new Set<string>()
  for (let i = 0; i < 2; i++) {
    const { ws, next } = await open(edge.url.replace('http', 'ws') + '/cable')
    t.teardown(() => ws.terminate())
    const hello = await next()
    greeted.add(hello)
    ws.send('ping')
    t.match(await next(), /^(a|b) echo ping$/)
    ws.close()
  }
  t.same([...greeted].sort(), ['hello from a', 'hello from b'])
})

test('an upgrade answered with fly-replay is re-delivered as an upgrade to the target', async (t) => {
  const a = await startWsMachine(t, 'a', 'instance=b;state=ws')
  const b = await startWsMachine(t, 'b', 'instance=a')
  const edge = await startEdge(t, { app: 'demo', machines: [{ id: 'a', url: a.url }, { id: 'b', url: b.url }] })
  const routes: RouteEvent[] = []
  edge.on('route', (event: RouteEvent) => routes.push(event))
  for (let i = 0; i < 2; i++) {
    const { ws, next } = await open(edge.url.replace('http', 'ws') + '/cable')
    t.teardown(() => ws.terminate())
    const hello = await next()
    const target = hello === 'hello from a' ? b : a
    t.equal(target.upgrades.at(-1)?.upgrade, 'websocket', 'the replayed request is still an upgrade')
    ws.close()
  }
  const src = b.upgrades.find((h) => h['fly-replay-src'] !== undefined)?.['fly-replay-src']
  t.match(String(src), /^instance=a;region=iad;t=\d+;state=ws$/)
  t.ok(routes.some((r) => r.websocket && r.replayed && r.status === 101))
})

test('an upgrade that no Machine can take gets an HTTP error, not a hang', async (t) => {
  const edge = await startEdge(t, { app: 'demo', machines: [{ id: 'a', url: 'http://127.0.0.1:1' }] })
  const status = await new Promise<number>((resolve) => {
    const ws = new WebSocket(edge.url.replace('http', 'ws') + '/cable')
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('error', () => resolve(-1))
  })
  t.equal(status, 502)
})
