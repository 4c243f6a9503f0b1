// The standalone server of bench/cable.mjs: an Action Cable stand-in that speaks the TurboCable protocol with `ws`
// (subscribe, its confirmation, ping/pong aside) and takes broadcasts on POST /_broadcast, fanning each out to the
// stream's subscribers as Navigator's hub does. Port in argv[2].
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'

const port = Number(process.argv[2])
const streams = new Map()
const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    const { stream, data } = JSON.parse(Buffer.concat(chunks).toString())
    const message = Buffer.from(JSON.stringify({ type: 'message', stream, data }))
    for (const ws of streams.get(stream) ?? []) ws.send(message, { binary: false })
    res.end()
  })
})
const wss = new WebSocketServer({ server, perMessageDeflate: false })
wss.on('connection', (ws) => {
  const own = new Set()
  ws.on('message', (raw) => {
    let message
    try { message = JSON.parse(raw.toString()) } catch { return }
    if (message.type !== 'subscribe' || typeof message.stream !== 'string') return
    let set = streams.get(message.stream)
    if (set === undefined) streams.set(message.stream, set = new Set())
    set.add(ws)
    own.add(message.stream)
    ws.send(JSON.stringify({ type: 'subscribed', stream: message.stream }))
  })
  ws.on('close', () => { for (const stream of own) streams.get(stream)?.delete(ws) })
})
server.listen(port, '127.0.0.1')
process.on('SIGTERM', () => { process.exit(0) })
