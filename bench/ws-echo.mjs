// A WebSocket echo server standing in for an Action Cable server in the benchmarks.
import { WebSocketServer } from 'ws'

const port = Number(process.env.PORT ?? process.argv[2])
const server = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false })
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})
server.on('listening', () => process.stdout.write(`listening ${port}\n`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
