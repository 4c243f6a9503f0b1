// A standalone WebSocket server (an Action Cable stand-in) that echoes every message.
import { WebSocketServer } from 'ws'

const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.env.CABLE_PORT) })
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => { ws.send(data, { binary: isBinary }) })
})
