import { createServer, type Server, type Socket } from 'node:net'
import { test } from 'tap'
import WebSocket from 'ws'
import { cableServer, freePort, http, siteConfig, startNavigator, tempDir, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// A standalone server's port (issue 18, item 4), through the real navigator process: a port another process holds
// is never mistaken for our server being ready, and no request ever reaches that process; a request that arrives
// while the server starts waits for it, up to the startup timeout.

interface Stranger {
  server: Server
  /** Connections the stranger accepted. */
  connections: () => number
}

/** Another process's listener on `port`: it answers anything with "stranger". */
async function stranger (port: number): Promise<Stranger> {
  let connections = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.once('data', () => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nstranger\n')
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  server.on('close', () => { for (const socket of sockets) socket.destroy() })
  return { server, connections: () => connections }
}

async function cableSite (t: Parameters<typeof startNavigator>[0], cablePort: number, options: { delayMs?: number, startupTimeout?: string } = {}): Promise<Running> {
  const dir = tempDir({
    'navigator.yml': await siteConfig({
      applications: options.startupTimeout === undefined ? [] : [`  startup_timeout: ${options.startupTimeout}`],
      tenants: [tenant('app', '/app')],
      after: cableServer(cablePort, String(options.delayMs ?? 0))
    })
  })
  return await startNavigator(t, dir)
}

function readyLines (nav: Running): number {
  return nav.logs.filter((line) => line.msg === 'standalone server ready').length
}

/** The status of a WebSocket handshake on `path`: 101 when upgraded, else the HTTP status it was refused with. */
async function handshake (nav: Running, path: string): Promise<{ status: number, socket: WebSocket }> {
  const ws = new WebSocket(nav.address.replace(/^http/, 'ws') + path)
  return await new Promise((resolve, reject) => {
    ws.once('open', () => { resolve({ status: 101, socket: ws }) })
    ws.once('unexpected-response', (req, res) => {
      res.resume()
      resolve({ status: res.statusCode ?? 0, socket: ws })
    })
    ws.once('error', reject)
  })
}

test('a port another process holds: logged, never reported ready, no request reaches it; freed, our server takes it', async (t) => {
  const cablePort = await freePort()
  const other = await stranger(cablePort)
  t.teardown(() => { other.server.close() })
  const nav = await cableSite(t, cablePort)

  const held = await nav.waitForLog((line) => line.msg === `port ${cablePort} is in use by another process`)
  t.equal(held.process, 'cable', 'the line names the standalone server')
  const asked = Date.now()
  const page = await http(nav.address, '/cable')
  t.equal(page.status, 503, 'the maintenance page, not the stranger\'s answer')
  // Waiting for it would take the startup_timeout (60 s by default); a loaded machine may take a few seconds anyway.
  t.ok(Date.now() - asked < 5000, `a server in backoff is not waited for: answered in ${Date.now() - asked} ms`)
  t.not(page.text, 'stranger\n')
  t.equal(page.headers['retry-after'], '5')
  const upgrade = await handshake(nav, '/cable')
  t.equal(upgrade.status, 503, 'a WebSocket is refused with the maintenance page too')
  upgrade.socket.terminate()
  // Two more backoff rounds (100 ms, then 200 ms) pass in this time.
  await new Promise((resolve) => setTimeout(resolve, 800))
  t.equal(readyLines(nav), 0, 'never logged as ready while the stranger holds the port')
  t.equal(other.connections(), 0, 'the stranger never got a connection, not even a readiness probe')
  t.ok(nav.logs.filter((line) => line.msg === `port ${cablePort} is in use by another process`).length >= 2, 'each attempt is logged')

  await new Promise<void>((resolve) => other.server.close(() => { resolve() }))
  await nav.waitForLog((line) => line.msg === 'standalone server ready', 15_000)
  const served = await http(nav.address, '/cable')
  t.equal(served.status, 200)
  t.equal(served.text, 'cable http\n', 'our own server answers once the port is free')
})

test('a request that arrives while the standalone server starts waits for it, at boot and after a restart', async (t) => {
  const cablePort = await freePort()
  const nav = await cableSite(t, cablePort, { delayMs: 1_500 })
  t.equal(readyLines(nav), 0, 'Navigator listens before the server is ready')

  const started = Date.now()
  const [page, upgrade] = await Promise.all([http(nav.address, '/cable'), handshake(nav, '/cable')])
  t.equal(page.status, 200, 'the request waited for the server instead of getting the maintenance page')
  t.equal(page.text, 'cable http\n')
  t.equal(upgrade.status, 101, 'a WebSocket handshake waits too')
  upgrade.socket.terminate()
  t.ok(Date.now() - started >= 1_000, `answered once the server listened (${Date.now() - started} ms)`)

  // Killed and respawned: while the new process starts (1.5 s before it listens), a request waits for it again.
  const first = await nav.waitForLog((line) => line.msg === 'standalone server starting')
  process.kill(first.pid as number, 'SIGKILL')
  await nav.waitForLog((line) => line.msg === 'standalone server starting' && line.pid !== first.pid)
  const again = await http(nav.address, '/cable')
  t.equal(again.status, 200, 'a request while the restarted server starts waits for it')
})

test('a standalone server slower than startup_timeout: the waiting request gets the maintenance page at the timeout', async (t) => {
  const cablePort = await freePort()
  const nav = await cableSite(t, cablePort, { delayMs: 6_000, startupTimeout: '1s' })
  const started = Date.now()
  const page = await http(nav.address, '/cable')
  const waited = Date.now() - started
  t.equal(page.status, 503)
  t.ok(waited >= 900 && waited < 4_000, `waited about the startup timeout (${waited} ms)`)
})

test('a stranger that takes the port between the spawn and the server\'s listen: no request reaches it, none is ready', async (t) => {
  const cablePort = await freePort()
  // The server waits 1.5 s before it listens: the port was free when it was spawned, and the stranger binds it now.
  const nav = await cableSite(t, cablePort, { delayMs: 1_500 })
  const spawned = await nav.waitForLog((line) => line.msg === 'standalone server starting')
  const other = await stranger(cablePort)
  let strangerOpen = true
  t.teardown(() => { if (strangerOpen) other.server.close() })

  // Requests throughout, one after another, from before the server fails to listen until the stranger leaves.
  const answers: Array<{ status: number, text: string, whileStranger: boolean }> = []
  let sending = true
  const sender = (async () => {
    while (sending) {
      const whileStranger = strangerOpen
      const page = await http(nav.address, '/cable')
      answers.push({ status: page.status, text: page.text, whileStranger })
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()

  const exited = await nav.waitForLog((line) => line.msg === 'standalone server exited unexpectedly' && line.process === 'cable')
  t.ok(exited !== undefined, 'our server could not listen (EADDRINUSE) and exited')
  t.match(JSON.stringify(nav.logs) + nav.stderr(), /EADDRINUSE/, 'because the port was taken')
  await nav.waitForLog((line) => line.msg === `port ${cablePort} is in use by another process` && line.time > spawned.time)
  // A few more backoff rounds with the stranger in place, requests still coming.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  t.equal(readyLines(nav), 0, 'never logged as ready while the stranger holds the port')
  t.equal(other.connections(), 0, 'the stranger never got a connection: no request, no readiness probe')
  const during = answers.filter((answer) => answer.whileStranger)
  t.ok(during.length >= 3, `requests were answered meanwhile (${during.length})`)
  t.ok(during.every((answer) => answer.status === 503 && answer.text !== 'stranger\n'), `each got the maintenance page: ${during.map((answer) => answer.status).join(' ')}`)

  strangerOpen = false
  await new Promise<void>((resolve) => other.server.close(() => { resolve() }))
  await nav.waitForLog((line) => line.msg === 'standalone server ready', 15_000)
  sending = false
  await sender
  const served = await http(nav.address, '/cable')
  t.equal(served.status, 200, 'recovered once the stranger left')
  t.equal(served.text, 'cable http\n', 'our own server answers')
  t.equal(other.connections(), 0, 'the stranger never got a connection')
})
