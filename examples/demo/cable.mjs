// The demo's standalone WebSocket server (Navigator routes /cable here): every message names this Machine.
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'

const machine = process.env.FLY_MACHINE_ID ?? 'unknown'
const region = process.env.FLY_REGION ?? 'unknown'
const server = createServer((req, res) => {
  res.writeHead(426, { 'content-type': 'text/plain' })
  res.end('WebSocket only\n')
})
const wss = new WebSocketServer({ server })
wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ type: 'welcome', machine, region }))
  ws.on('message', (data) => ws.send(JSON.stringify({ type: 'echo', machine, region, data: String(data) })))
})
server.listen(Number(process.env.PORT), '127.0.0.1')
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    for (const client of wss.clients) client.close(1001, 'going away')
    server.close(() => process.exit(0))
    server.closeAllConnections()
  })
}
