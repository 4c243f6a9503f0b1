// A tenant: Navigator starts it with PORT set and proxies its path prefix to it.
import { createServer } from 'node:http'

const label = process.env.TENANT_LABEL ?? 'tenant'
createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(`<!DOCTYPE html>
<title>${label}</title>
<h1>${label}</h1>
<p>Process ${process.pid} on port ${process.env.PORT} answered ${req.method} ${req.url}.</p>
<p>WebSocket: <span id="ws">connecting…</span></p>
<script>
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/cable')
  ws.onopen = () => ws.send('hello from ${label}')
  ws.onmessage = (event) => { document.getElementById('ws').textContent = 'echo: ' + event.data }
</script>
`)
}).listen(Number(process.env.PORT), '127.0.0.1')
