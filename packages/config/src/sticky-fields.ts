// What the sticky cookie's Domain and the sticky request header's name may be: checked by the YAML loader and by
// the sticky-sessions plugin's options alike, so the two cannot disagree.

const DOMAIN_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
/** A host name, optionally with a leading dot (which browsers ignore). */
const COOKIE_DOMAIN = new RegExp(`^\\.?(?:${DOMAIN_LABEL}\\.)*${DOMAIN_LABEL}$`)

/** An RFC 7230 token of at most 64 characters. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/

/**
 * Headers that HTTP itself, Fly's proxy or Navigator give a meaning to: carrying a Machine ID in one of them would
 * break framing, routing or authentication, or let the sticky value be mistaken for Fly's own headers.
 */
const RESERVED_HEADERS = new Set([
  'authorization', 'connection', 'content-encoding', 'content-length', 'content-type', 'cookie', 'expect', 'host',
  'keep-alive', 'location', 'proxy-authorization', 'proxy-connection', 'set-cookie', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'via', 'x-request-id'
])
const RESERVED_PREFIXES = ['fly-', 'x-forwarded-', 'x-navigator-', 'sec-']

/** Why `domain` cannot be a cookie's Domain attribute, or null when it can. */
export function cookieDomainProblem (domain: string): string | null {
  if (domain.length <= 253 && COOKIE_DOMAIN.test(domain)) return null
  return `${JSON.stringify(domain)} is not a domain name: write a host such as example.com (letters, digits, "-" and dots; no scheme, port or path)`
}

/** Why `name` cannot be the sticky request header, or null when it can (header names are case-insensitive). */
export function stickyHeaderProblem (name: string): string | null {
  if (!HEADER_NAME.test(name)) return `${JSON.stringify(name)} is not a header name: use letters, digits and "-", such as x-machine`
  const lower = name.toLowerCase()
  if (RESERVED_HEADERS.has(lower) || RESERVED_PREFIXES.some((prefix) => lower.startsWith(prefix))) {
    return `${JSON.stringify(name)} already means something to HTTP, Fly or Navigator: choose a name of your own, such as x-machine`
  }
  return null
}
