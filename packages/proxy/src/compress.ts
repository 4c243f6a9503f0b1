import type { IncomingMessage } from 'node:http'
import { constants, createBrotliCompress, createGzip, type BrotliCompress, type Gzip } from 'node:zlib'

// Compression of proxied responses, decided once per response from the request's Accept-Encoding and the response's
// headers, and done by Node's zlib streams between the upstream's body and the client. Which responses qualify, and
// why it is not @fastify/compress, is in this package's README.

/** A response whose Content-Length is below this many bytes is sent as it is: compressing it gains nothing. */
export const COMPRESSION_THRESHOLD_BYTES = 1024
/** Brotli's quality for a stream (0 to 11): 11 is for files compressed once, far too slow per response. */
export const BROTLI_QUALITY = 4
/** gzip's level (1 to 9), zlib's own default. */
export const GZIP_LEVEL = 6

export type ContentEncoding = 'br' | 'gzip'
export type Encoder = BrotliCompress | Gzip

/**
 * Text types only: text/* (but an event stream, which is for a client to read as it comes), JSON, JavaScript, XML,
 * and any `+json` or `+xml` type (SVG, RSS, Atom, XHTML, problem+json...). Images, fonts, archives and media are
 * compressed already or gain little.
 */
const COMPRESSIBLE = /^\s*(?:text\/(?!event-stream\s*(?:;|$))|application\/(?:json|(?:x-)?javascript|ecmascript|xml)\s*(?:;|$)|[a-z0-9!#$&^_.-]+\/[a-z0-9!#$&^_.+-]+\+(?:json|xml)\s*(?:;|$))/i
const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i
const VARY_ACCEPT_ENCODING = /(?:^|,)\s*(?:accept-encoding|\*)\s*(?:,|$)/i

/** Accept-Encoding values seen, and what they accept: a server sees a handful of distinct ones. */
const accepted = new Map<string, ContentEncoding | null>()
const ACCEPTED_CACHE_SIZE = 64

/**
 * The encoding to use for a client's Accept-Encoding, or null for none: the one with the higher q-value, br when
 * both are equally acceptable (smaller for the same time at the quality used here). `q=0` refuses an encoding;
 * `*` stands for any encoding not named; names are case-insensitive, and `x-gzip` is gzip.
 */
export function acceptedEncoding (header: string): ContentEncoding | null {
  let encoding = accepted.get(header)
  if (encoding === undefined) {
    encoding = negotiate(header)
    if (accepted.size >= ACCEPTED_CACHE_SIZE) accepted.clear()
    accepted.set(header, encoding)
  }
  return encoding
}

function negotiate (header: string): ContentEncoding | null {
  let br = -1
  let gzip = -1
  let any = -1
  for (const item of header.split(',')) {
    const semicolon = item.indexOf(';')
    const name = (semicolon === -1 ? item : item.slice(0, semicolon)).trim().toLowerCase()
    const q = semicolon === -1 ? 1 : qValue(item.slice(semicolon + 1))
    if (name === 'br') br = Math.max(br, q)
    else if (name === 'gzip' || name === 'x-gzip') gzip = Math.max(gzip, q)
    else if (name === '*') any = Math.max(any, q)
  }
  if (br === -1) br = any
  if (gzip === -1) gzip = any
  if (br <= 0 && gzip <= 0) return null
  return br >= gzip ? 'br' : 'gzip'
}

/** The `q` of an Accept-Encoding item's parameters: 1 when absent, 0 when it is not a number from 0 to 1. */
function qValue (parameters: string): number {
  for (const parameter of parameters.split(';')) {
    const equals = parameter.indexOf('=')
    if (equals === -1 || parameter.slice(0, equals).trim().toLowerCase() !== 'q') continue
    const q = Number(parameter.slice(equals + 1).trim())
    return Number.isFinite(q) && q >= 0 && q <= 1 ? q : 0
  }
  return 1
}

/**
 * Decides whether a response to `req` is compressed, and if so prepares its headers (`headers`, the flat list about
 * to be written): Content-Encoding added; Content-Length and Accept-Ranges removed (a range of the compressed body
 * would be asked of the upstream, which answers ranges of the uncompressed one); a strong ETag made weak, as the
 * compressed bytes are not those it named (nginx does the same). Every response that could have been compressed
 * (a text type, big enough, not encoded yet...) gets `Vary: Accept-Encoding` once the client sent an Accept-Encoding,
 * merged into the upstream's own Vary, whether or not it is compressed.
 *
 * Returns the encoding, or null to send the body as it is. A request without Accept-Encoding costs one lookup.
 */
export function compressionFor (req: IncomingMessage, statusCode: number, headers: string[]): ContentEncoding | null {
  const acceptEncoding = req.headers['accept-encoding']
  if (acceptEncoding === undefined || req.method === 'HEAD') return null
  // No body (204, 304), or part of one (206).
  if (statusCode === 204 || statusCode === 205 || statusCode === 206 || statusCode === 304) return null
  let compressible = false
  let contentLength = -1
  let acceptRanges = -1
  let etag = -1
  let vary = -1
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]
    switch (name.length) {
      case 4: {
        const lower = name.toLowerCase()
        if (lower === 'vary') {
          if (VARY_ACCEPT_ENCODING.test(headers[i + 1])) vary = -2
          else if (vary === -1) vary = i
        } else if (lower === 'etag') etag = i
        break
      }
      case 12:
        if (name.toLowerCase() === 'content-type') compressible = COMPRESSIBLE.test(headers[i + 1])
        break
      case 13: {
        const lower = name.toLowerCase()
        if (lower === 'content-range') return null
        if (lower === 'cache-control' && NO_TRANSFORM.test(headers[i + 1])) return null
        if (lower === 'accept-ranges') acceptRanges = i
        break
      }
      case 14:
        if (name.toLowerCase() === 'content-length') contentLength = i
        break
      case 16:
        if (name.toLowerCase() === 'content-encoding') return null
        break
    }
  }
  if (!compressible) return null
  if (contentLength !== -1 && Number(headers[contentLength + 1]) < COMPRESSION_THRESHOLD_BYTES) return null
  if (vary >= 0) headers[vary + 1] = `${headers[vary + 1]}, Accept-Encoding`
  else if (vary === -1) headers.push('Vary', 'Accept-Encoding')
  const encoding = acceptedEncoding(Array.isArray(acceptEncoding) ? acceptEncoding.join(',') : acceptEncoding)
  if (encoding === null) return null
  if (etag !== -1 && !headers[etag + 1].startsWith('W/')) headers[etag + 1] = `W/${headers[etag + 1]}`
  // The later of the two first, so that the earlier index still holds.
  if (contentLength > acceptRanges) {
    headers.splice(contentLength, 2)
    if (acceptRanges !== -1) headers.splice(acceptRanges, 2)
  } else {
    if (acceptRanges !== -1) headers.splice(acceptRanges, 2)
    if (contentLength !== -1) headers.splice(contentLength, 2)
  }
  headers.push('Content-Encoding', encoding)
  return encoding
}

const BROTLI_OPTIONS = {
  params: {
    [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
    [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT
  }
}
const GZIP_OPTIONS = { level: GZIP_LEVEL }

export function createEncoder (encoding: ContentEncoding): Encoder {
  return encoding === 'br' ? createBrotliCompress(BROTLI_OPTIONS) : createGzip(GZIP_OPTIONS)
}

/**
 * Makes what `encoder` has compressed so far go out now, for a body that comes in parts over time. The sync flush
 * of gzip, not zlib's default full flush, which would also forget the window and compress the rest worse.
 */
export function flushEncoder (encoder: Encoder, encoding: ContentEncoding): void {
  encoder.flush(encoding === 'br' ? constants.BROTLI_OPERATION_FLUSH : constants.Z_SYNC_FLUSH)
}
