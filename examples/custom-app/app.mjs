// A Fastify app of your own, run once per Fly Machine, with sticky sessions in front of three things that answer
// requests: a route of the app (/app/*), @fastify/http-proxy to this Machine's own upstream (/api, HTTP and
// WebSocket), and a @fastify/websocket route (/live). The order of registration matters: see README.md.
import { createServer } from 'node:http'
import Fastify from 'fastify'
import fastifyHttpProxy from '@fastify/http-proxy'
import fastifyWebsocket from '@fastify/websocket'
import { createUpstreamProxy } from '@navigator/proxy'
import { stickySessions } from '@navigator/sticky-sessions'

export const STICKY_PATHS = ['/app/*', '/api/*', '/live']
export const PROXY_PREFIX = '/api'

/**
 * Builds the app of one Machine.
 * - machineId: this Machine (FLY_MACHINE_ID on Fly)
 * - upstream: origin of this Machine's own upstream, e.g. http://127.0.0.1:3001
 * - peers: { machineId: origin } of the other Machines where there is no Fly DNS (local runs); on Fly leave it out
 * - port: the port every Machine listens on, for the direct proxy to <id>.vm.<app>.internal:<port>
 * - onFly: behind Fly's edge (trust its X-Forwarded-* and pass them on to the other Machines)
 * - upstreamStats: what the upstream counts, shown by /stats
 */
export async function buildApp (options) {
  const { machineId, upstream, peers, port, onFly = false, secret, upstreamStats = {}, logger = true } = options
  const app = Fastify({ logger, trustProxy: onFly })
  const served = { app: 0, live: 0 }

  // 1. @fastify/websocket, given only the upgrades outside the proxy's prefix (routeUpgrades says why). Registered
  //    before the sticky plugin so that its onRequest hook marks an upgrade (request.ws) before the sticky hook may
  //    answer it: its onResponse hook then closes the socket of an upgrade answered with plain HTTP (a replay).
  await app.register(fastifyWebsocket, { options: { server: routeUpgrades(app, PROXY_PREFIX) } })

  // 2. Sticky sessions: one onRequest hook, which runs before the route handlers where both plugins make their
  //    handshakes. Bodies too large to replay go straight to the cookie's Machine through this proxy.
  const directProxy = createUpstreamProxy({ trustForwarded: onFly })
  app.addHook('onClose', () => directProxy.close())
  await app.register(stickySessions, { paths: STICKY_PATHS, machineId, peers, port, secret, proxy: directProxy })

  // 3. The sticky cookie on the 101s: a ws server writes its handshake itself, without the reply's headers.
  const carryCookie = cookiesIntoHandshakes(app)
  carryCookie(app.websocketServer)

  // 4. /api to this Machine's upstream, WebSockets included.
  await app.register(fastifyHttpProxy, {
    prefix: PROXY_PREFIX,
    upstream,
    websocket: true,
    // Runs in the proxy's own scope, the one place where its ws server (reply.wsProxy.wss) can be reached.
    preHandler (request, reply, done) {
      const wss = reply.wsProxy?.wss
      if (wss !== undefined) carryCookie(wss)
      done()
    }
  })

  app.get('/app/*', async (request) => {
    served.app++
    return { machine: machineId, served: 'app', sticky: request.stickySession }
  })

  app.get('/live', { websocket: true }, (socket, request) => {
    served.live++
    const sticky = request.stickySession
    socket.on('message', (data) => {
      socket.send(JSON.stringify({ machine: machineId, served: 'live', sticky, echo: String(data) }))
    })
  })

  // Not a sticky path: any Machine answers it, with what it and its upstream served (the tests read it).
  app.get('/stats', async () => ({ machine: machineId, ...served, upstream: upstreamStats }))

  return app
}

/**
 * Both plugins listen to the server's 'upgrade' event and route the request through Fastify (so its hooks run).
 * @fastify/http-proxy takes only the upgrades under its prefix once the server has another 'upgrade' listener;
 * @fastify/websocket takes every upgrade. Left alone, an upgrade under the prefix is routed by both, on one socket
 * (README.md, "How the upgrades go", says what then goes wrong). So @fastify/websocket is handed a server of
 * its own (its `server` option): one that never listens, and gets only the upgrades outside the prefix, passed on
 * from the app's server. Every upgrade has one owner.
 */
function routeUpgrades (app, prefix) {
  const outside = createServer()
  app.server.on('upgrade', (req, socket, head) => {
    const path = req.url.split('?', 1)[0]
    if (path !== prefix && !path.startsWith(prefix + '/')) outside.emit('upgrade', req, socket, head)
  })
  return outside
}

/**
 * The Set-Cookie the sticky plugin put on the reply of an upgrade, added to the 101 through ws's 'headers' event,
 * which ws emits before it writes the handshake. Returns carryCookie(wss), which hooks one ws server (once).
 */
function cookiesIntoHandshakes (app) {
  const replies = new WeakMap()
  app.addHook('onRequest', (request, reply, done) => {
    if (request.headers.upgrade !== undefined) replies.set(request.raw, reply)
    done()
  })
  const hooked = new WeakSet()
  return function carryCookie (wss) {
    if (hooked.has(wss)) return
    hooked.add(wss)
    wss.on('headers', (headers, req) => {
      const cookies = replies.get(req)?.getHeader('set-cookie')
      if (cookies === undefined) return
      for (const cookie of [cookies].flat()) headers.push(`Set-Cookie: ${cookie}`)
    })
  }
}
