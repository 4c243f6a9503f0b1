import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'

/** Idle keep-alive connections are closed after this long (above the 60 s of common load balancers). */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000
/**
 * A client must have sent its complete request headers this long after it connected (or after its previous
 * request on a kept-alive connection); a slowloris client trickling header bytes is cut off with 408.
 */
export const HEADERS_TIMEOUT_MS = 20_000
/**
 * A client must have sent its whole request, body included, within this long (Node's own default): a client that
 * trickles a body cannot hold a connection, and an upstream, forever. Responses are not limited by it.
 */
export const REQUEST_TIMEOUT_MS = 300_000
/** How often the two limits above are checked; a slow client is cut off at most this long after its limit. */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1_000

export interface HttpHandlers {
  request: (req: IncomingMessage, res: ServerResponse) => void
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
}

/** The one http server: it outlives reloads, and hands each request and upgrade to `handlers`. */
export function createHttpServer (handlers: HttpHandlers, log: FastifyBaseLogger): Server {
  const server = createServer({
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS
  }, handlers.request)
  server.on('upgrade', handlers.upgrade)
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // A response already under way on this connection (a pipelined request after it failed to parse) must not get
    // a second status line in the middle of its body. Either way the connection is then destroyed, as Node's own
    // handler does: ended only, it would wait for the client's FIN, and a client that never sends one would pin a
    // descriptor for as long as it liked.
    const answering = (socket as { _httpMessage?: ServerResponse | null })._httpMessage
    if (socket.writable && (answering == null || !answering.headersSent)) socket.write(clientErrorResponse(err.code))
    socket.destroy()
    log.debug({ err: err.message, code: err.code }, 'client error')
  })
  return server
}

/** The answer to a request Node's parser refused, as Node itself would give it (431 and 408 keep their meaning). */
function clientErrorResponse (code: string | undefined): string {
  const status = code === 'HPE_HEADER_OVERFLOW'
    ? '431 Request Header Fields Too Large'
    : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
  return `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`
}

/** Listens; rejects when the address cannot be had. */
export async function listenOn (server: Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => {
      server.removeListener('error', reject)
      resolve()
    })
  })
}

/** `http://host:port` a client on this computer can connect to (a wildcard address becomes 127.0.0.1). */
export function connectableAddress (server: Server): string {
  const address = server.address() as AddressInfo
  const host = address.address === '::' || address.address === '0.0.0.0' ? '127.0.0.1' : address.address
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
}

/**
 * The replay and sticky steps need the port this Navigator listens on (other Machines are reached on it), before
 * it listens. For `listen: 0` a free port is picked up front, so the steps and the socket agree.
 */
export async function concretePort (host: string, port: number): Promise<number> {
  if (port !== 0) return port
  return await new Promise((resolve, reject) => {
    const probe = createNetServer()
    probe.once('error', reject)
    probe.listen({ host, port: 0 }, () => {
      const chosen = (probe.address() as AddressInfo).port
      probe.close(() => { resolve(chosen) })
    })
  })
}
