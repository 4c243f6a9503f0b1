import { BlockList } from 'node:net'
import type { IncomingMessage } from 'node:http'
import { ANSWERED, answer, NEXT, type RequestContext, type Step, type StepOutcome } from '@navigator/proxy'
import { parseBroadcast } from '../cable-message.js'
import { peerIn } from '../metrics-access.js'
import type { StepOptions } from './index.js'

/** A broadcast body larger than this gets 413 (a Turbo Stream of a whole page is far below it). */
export const CABLE_MAX_BROADCAST_BYTES = 4 * 1024 * 1024

const PLAIN = Object.freeze(['content-type', 'text/plain; charset=utf-8', 'x-content-type-options', 'nosniff'])
const NOT_A_POST = Object.freeze(['allow', 'POST', ...PLAIN])

/**
 * `cable.broadcast_path`: the apps of this Machine POST `{"stream": "...", "data": ...}` here, and the hub sends
 * `{"type":"message","stream":"...","data":...}` to the stream's subscribers. Only from this computer: the
 * address the request's socket comes from must be a loopback one (127.0.0.0/8, ::1, or an IPv4 loopback address
 * written as IPv6); anyone else gets 403, before auth (the apps have no password) and before anything could route
 * the path elsewhere. The answers are the Go Navigator's: 200 with no body, 405 for another method, 400 for a body
 * that is not a JSON object or names no stream.
 */
export function cableBroadcast ({ config, cable }: StepOptions): Step | null {
  if (!config.cable.enabled) return null
  const path = config.cable.broadcastPath

  async function broadcast (ctx: RequestContext): Promise<StepOutcome> {
    const body = await readBody(ctx.req)
    if (body === null) {
      if (!ctx.res.destroyed) answer(ctx, 413, PLAIN, 'Payload Too Large\n')
      return ANSWERED
    }
    const parsed = parseBroadcast(body.toString())
    if (typeof parsed === 'string') {
      answer(ctx, 400, PLAIN, parsed)
      return ANSWERED
    }
    const message = Buffer.from(parsed.message)
    const count = cable.broadcast(parsed.stream, message)
    ctx.log.debug({ stream: parsed.stream, connections: count, bytes: message.length }, 'cable broadcast sent')
    answer(ctx, 200, PLAIN, '')
    return ANSWERED
  }

  return {
    name: 'cable-broadcast',
    run (ctx) {
      if (ctx.path !== path) return NEXT
      if (!fromLoopback(ctx.req)) {
        ctx.log.debug({ address: ctx.req.socket.remoteAddress }, 'cable broadcast refused: not from this computer')
        answer(ctx, 403, PLAIN, 'Forbidden\n')
        return ANSWERED
      }
      if (ctx.req.method !== 'POST') {
        answer(ctx, 405, NOT_A_POST, 'Method not allowed\n')
        return ANSWERED
      }
      return broadcast(ctx)
    }
  }
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/** Whether the request's socket comes from a loopback address: its peer, never a header. */
const fromLoopback = (req: IncomingMessage): boolean => peerIn(LOOPBACK, req)

/**
 * The whole body, or null when it is larger than CABLE_MAX_BROADCAST_BYTES (read to its end all the same, without
 * keeping it, so that the client gets its 413 after it has sent everything rather than a reset) or the client went
 * away.
 */
async function readBody (req: IncomingMessage): Promise<Buffer | null> {
  return await new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= CABLE_MAX_BROADCAST_BYTES) chunks.push(chunk)
      else chunks.length = 0
    })
    req.once('end', () => { resolve(size > CABLE_MAX_BROADCAST_BYTES ? null : Buffer.concat(chunks, size)) })
    req.once('error', () => { resolve(null) })
    req.once('close', () => { if (!req.complete) resolve(null) })
  })
}
