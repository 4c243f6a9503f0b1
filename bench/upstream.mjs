// A stand-in Machine for the benchmarks: answers every request with a ~100-byte
// body naming itself, drains request bodies, keeps connections alive.
import { createServer } from 'node:http'

const port = Number(process.env.PORT ?? process.argv[2] ?? 0)
const name = process.env.MACHINE_NAME ?? process.argv[3] ?? 'm1'
const body = Buffer.from(`hello from ${name} `.padEnd(100, '.'))

const server = createServer((req, res) => {
  if (req.method === 'GET' || req.method === 'HEAD') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
    res.end(body)
    return
  }
  let bytes = 0
  req.on('data', (chunk) => { bytes += chunk.length })
  req.on('end', () => {
    const reply = JSON.stringify({ machine: name, bytes })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) })
    res.end(reply)
  })
})
server.keepAliveTimeout = 60_000
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
