import { BlockList, isIPv4 } from 'node:net'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { AddressBlock } from '@navigator/config'
import { ANSWERED, isUpgrade, type RequestContext, type StepResult } from '@navigator/proxy'
import { connectableAddress, listenOn } from './http-server.js'
import type { NavigatorMetrics } from './metrics.js'
import { answerNotFound } from './steps/not-found.js'

// Who may read Navigator's own pages (the metrics, the status page): one guard for every one of them, so that
// they refuse the same clients with the same answer. And the metrics' listener of their own (server.metrics.listen).

/** Headers a proxy adds: a request that carries one came through Fly's edge (or another proxy), never straight. */
const PROXIED = ['fly-client-ip', 'x-forwarded-for', 'forwarded', 'via'] as const
const IPV4_MAPPED = '::ffff:'
const NOT_FOUND = 'Not Found\n'

/**
 * Whether a request may read one of Navigator's own pages: a GET or HEAD (never a WebSocket upgrade), straight
 * from an address of `allow` (so not through a proxy).
 */
export type ReadAccess = (req: IncomingMessage) => boolean

/** A GET or HEAD that is not a WebSocket upgrade: the only requests Navigator's own pages answer. */
export function isRead (req: IncomingMessage): boolean {
  const method = req.method
  return (method === 'GET' || method === 'HEAD') && !isUpgrade(req)
}

export function readAccess (allow: readonly AddressBlock[]): ReadAccess {
  const blocks = new BlockList()
  for (const block of allow) blocks.addSubnet(block.address, block.prefix, block.family)
  return function mayRead (req) {
    if (!isRead(req)) return false
    const headers = req.headers
    for (const name of PROXIED) if (headers[name] !== undefined) return false
    return peerIn(blocks, req)
  }
}

/** Whether the request's socket comes from an address of `blocks`: its peer, never a header. */
export function peerIn (blocks: BlockList, req: IncomingMessage): boolean {
  let address = req.socket.remoteAddress
  if (address === undefined) return false
  // A dual-stack socket shows an IPv4 client as ::ffff:a.b.c.d; the blocks are written as plain IPv4.
  if (address.startsWith(IPV4_MAPPED) && isIPv4(address.slice(IPV4_MAPPED.length))) address = address.slice(IPV4_MAPPED.length)
  return blocks.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')
}

/** Nobody: the main port's answer for the metrics path when they have a listener of their own. */
export const NOBODY: ReadAccess = () => false

/**
 * A request for one of Navigator's own paths: `serve` it to a client that may read it; anyone else gets the 404 of
 * a path that does not exist, so that a refused path looks like no path and never goes on to an app, a replay or
 * another Machine.
 */
export function ownPath (ctx: RequestContext, mayRead: ReadAccess, serve: (ctx: RequestContext) => StepResult): StepResult {
  if (mayRead(ctx.req)) return serve(ctx)
  answerNotFound(ctx)
  return ANSWERED
}

/**
 * The metrics' own listener: GET or HEAD of the metrics path from an allowed client gets them, anything else 404.
 * It lives as long as the server (a reload keeps it); close() ends it.
 */
export async function listenForMetrics (metrics: NavigatorMetrics, log: FastifyBaseLogger): Promise<Server | null> {
  const { listen, path } = metrics.settings
  if (listen === null) return null
  const mayRead = readAccess(metrics.settings.allow)
  const server = createServer((req, res) => {
    const url = req.url ?? ''
    const query = url.indexOf('?')
    const served = (query === -1 ? url : url.slice(0, query)) === path && mayRead(req)
    if (!served) {
      answerRaw(res, 404, ['content-type', 'text/plain; charset=utf-8'], NOT_FOUND)
      return
    }
    metrics.scrape().then((text) => { answerRaw(res, 200, metrics.answerHeaders, text) }, (err: Error) => {
      log.error({ err }, 'the metrics could not be collected')
      answerRaw(res, 500, ['content-type', 'text/plain; charset=utf-8'], 'Internal Server Error\n')
    })
  })
  server.keepAliveTimeout = 5_000
  await listenOn(server, listen.host, listen.port)
  log.info({ address: connectableAddress(server) }, 'metrics listening')
  return server
}

function answerRaw (res: ServerResponse, status: number, headers: readonly string[], body: string): void {
  res.writeHead(status, [...headers, 'content-length', String(Buffer.byteLength(body))])
  res.end(body)
}
