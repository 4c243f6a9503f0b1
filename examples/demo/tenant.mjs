// The demo tenant (Navigator routes /app here): a page naming the Machine that served it, a reload
// counter kept in this Machine's memory, and an upload endpoint that answers with the body's sha256.
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'

const machine = process.env.FLY_MACHINE_ID ?? 'unknown'
const region = process.env.FLY_REGION ?? 'unknown'
const app = process.env.FLY_APP_NAME ?? 'unknown'
let views = 0

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function page () {
  views++
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Navigator demo: Machine ${escape(machine)}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #1d1d1f; }
  h1 { font-size: 1.6rem; }
  .machine { font-family: ui-monospace, monospace; background: #eef3ff; padding: 0.1rem 0.4rem; border-radius: 4px; }
  .card { border: 1px solid #d0d7e2; border-radius: 8px; padding: 1rem 1.25rem; margin: 1rem 0; }
  #ws.ok { color: #0a7d32; } #ws.bad { color: #b00020; }
</style>
</head>
<body data-machine="${escape(machine)}">
<h1>Served by Machine <span class="machine" id="machine">${escape(machine)}</span></h1>
<div class="card">
  <div>App <b>${escape(app)}</b>, region <b id="region">${escape(region)}</b></div>
  <div>Page views on this Machine: <b id="views">${views}</b></div>
</div>
<div class="card"><span id="ws">WebSocket connecting…</span></div>
<p>Reload: a sticky-session cookie keeps you on this Machine. Another browser (or a private window) may land on
another one, and stays there.</p>
<script>
  const status = document.getElementById('ws')
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/cable')
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data)
    status.textContent = 'WebSocket connected to machine ' + message.machine
    status.dataset.machine = message.machine
    status.className = 'ok'
  }
  ws.onclose = () => { status.textContent = 'WebSocket closed'; status.className = 'bad' }
</script>
</body>
</html>
`
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0].replace(/^\/app(?=\/|$)/, '') || '/'
  if (path === '/up') {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('ok\n')
    return
  }
  if (path === '/whoami') {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ machine, region, app }))
    return
  }
  if (path === '/upload') {
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (chunk) => { hash.update(chunk); bytes += chunk.length })
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ machine, bytes, sha256: hash.digest('hex') }))
    })
    return
  }
  if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    res.end(page())
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain' })
  res.end('not found\n')
})
server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
})
