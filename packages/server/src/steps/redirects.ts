import { answer, type RequestContext } from '@navigator/proxy'

/** Anything but visible ASCII: a control character (CR, LF), a space or a non-ASCII character. */
const UNSAFE_IN_LOCATION = /[^\x21-\x7e]/g
/** A path that begins with two slashes (or a slash and a backslash) is a host to a browser ("//evil.example"). */
const LEADING_SLASHES = /^[/\\]+/

/**
 * The Location header for a redirect to `target`: percent-encoded where a byte could split the header or be read
 * differently by a browser, and, when `target` is a path, kept a path on this host whatever the request put in it
 * (`/$1` for "//evil.example" is "/evil.example", never another host).
 */
export function locationOf (target: string): string {
  let location = target.replace(UNSAFE_IN_LOCATION, percentEncode)
  if (location.charCodeAt(0) === 47 /* / */ || location.charCodeAt(0) === 92 /* \ */) {
    location = location.replace(LEADING_SLASHES, '/')
  }
  return location
}

function percentEncode (character: string): string {
  let out = ''
  for (const byte of Buffer.from(character)) out += '%' + (byte < 16 ? '0' : '') + byte.toString(16).toUpperCase()
  return out
}

/** The request's query string with its "?" (or ""), from its URL: a redirect keeps it, as the Go Navigator does. */
export function queryOf (ctx: RequestContext): string {
  const url = ctx.req.url ?? ''
  const at = url.indexOf('?')
  return at === -1 ? '' : url.slice(at)
}

/**
 * Answers `status` with a Location to `target` (made safe by `locationOf`) and an empty body, its type said (Fastify
 * would add one, and the raw path must answer the same).
 */
export function answerRedirect (ctx: RequestContext, status: number, target: string): void {
  answer(ctx, status, ['location', locationOf(target), 'content-type', 'text/plain; charset=utf-8'], '')
}
