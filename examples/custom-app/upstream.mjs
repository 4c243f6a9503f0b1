// The upstream this Machine proxies /api to. On a real Machine it would be a service of its own on localhost (an API
// server, a sidecar); here it is a small node:http server with a WebSocket echo, and every answer names the Machine
// it runs on, so a client can tell whose upstream served it.
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'

/** Answers every request with what it received: method, URL, and the body's length and SHA-256. */
function describeRequest (machine, stats) {
  return (req, res) => {
    stats.requests++
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (chunk) => {
      bytes += chunk.length
      hash.update(chunk)
    })
    req.on('end', () => {
      const answer = { machine, served: 'upstream', method: req.method, url: req.url, bytes, sha256: hash.digest('hex') }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(answer))
    })
  }
}

/** Echoes every message, wrapped with the Machine's ID. */
function echo (machine, stats) {
  return (socket, req) => {
    stats.webSockets++
    socket.on('message', (data) => {
      socket.send(JSON.stringify({ machine, served: 'upstream', url: req.url, echo: String(data) }))
    })
  }
}

/** Starts the upstream on host:port; resolves to { stats, close }. */
export async function startUpstream ({ machine, port, host = '127.0.0.1' }) {
  const stats = { requests: 0, webSockets: 0 }
  const server = createServer(describeRequest(machine, stats))
  const wss = new WebSocketServer({ server })
  wss.on('connection', echo(machine, stats))
  server.listen(port, host)
  await once(server, 'listening')
  return {
    stats,
    close () {
      for (const client of wss.clients) client.terminate()
      wss.close()
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    }
  }
}
