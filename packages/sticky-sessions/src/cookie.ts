import { createHmac, timingSafeEqual } from 'node:crypto'
import { stringifySetCookie } from 'cookie'
import { isValidMachineId } from '@navigator/fly-replay'
import type { CookieAttributes } from './options.js'

// The sticky cookie's value: a Machine ID, or `<id>.<signature>` when secrets are configured. The signature is the
// base64url HMAC-SHA256 of the ID; the first secret signs, every secret verifies (key rotation). Parsing is strict:
// anything that is not exactly one of those shapes is rejected with a reason, never repaired.

export type CookieRejection =
  | 'malformed'
  | 'signature-missing'
  | 'signature-invalid'
  | 'signature-not-configured'
  | 'machine-unknown'

export const COOKIE_REJECTIONS: readonly CookieRejection[] = [
  'malformed', 'signature-missing', 'signature-invalid', 'signature-not-configured', 'machine-unknown'
]

/** Length of a base64url HMAC-SHA256 (32 bytes, unpadded). */
const SIGNATURE_LENGTH = 43
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{43}$/
/** A Machine ID, a dot and a signature: anything longer is rejected before any work is done. */
const MAX_VALUE_LENGTH = 64 + 1 + SIGNATURE_LENGTH

export interface CookieCodec {
  /** The cookie value naming `machineId` (signed when secrets are set). */
  encode (machineId: string): string
  /** The Machine ID a cookie value names, or null when the value is rejected (see `rejection`). */
  decode (value: string): string | null
  /** Why `decode` rejected a value. */
  rejection (value: string): CookieRejection
}

function sign (secret: string, machineId: string): string {
  return createHmac('sha256', secret).update(machineId).digest('base64url')
}

function createPlainCodec (): CookieCodec {
  return {
    encode: (machineId) => machineId,
    decode: (value) => isValidMachineId(value) ? value : null,
    rejection: (value) => {
      const dot = value.lastIndexOf('.')
      if (dot > 0 && isValidMachineId(value.slice(0, dot)) && SIGNATURE_PATTERN.test(value.slice(dot + 1))) {
        return 'signature-not-configured'
      }
      return 'malformed'
    }
  }
}

function createSignedCodec (secrets: readonly string[]): CookieCodec {
  const signingSecret = secrets[0]

  function verify (machineId: string, signature: string): boolean {
    const given = Buffer.from(signature, 'latin1')
    let valid = false
    // Every secret is checked, so the time taken does not tell which one (if any) matched.
    for (const secret of secrets) {
      if (timingSafeEqual(given, Buffer.from(sign(secret, machineId), 'latin1'))) valid = true
    }
    return valid
  }

  function split (value: string): [string, string] | null {
    if (value.length > MAX_VALUE_LENGTH) return null
    const dot = value.lastIndexOf('.')
    if (dot <= 0) return null
    const machineId = value.slice(0, dot)
    const signature = value.slice(dot + 1)
    if (!isValidMachineId(machineId) || !SIGNATURE_PATTERN.test(signature)) return null
    return [machineId, signature]
  }

  return {
    encode: (machineId) => `${machineId}.${sign(signingSecret, machineId)}`,
    decode: (value) => {
      const parts = split(value)
      return parts !== null && verify(parts[0], parts[1]) ? parts[0] : null
    },
    rejection: (value) => {
      if (isValidMachineId(value)) return 'signature-missing'
      return split(value) === null ? 'malformed' : 'signature-invalid'
    }
  }
}

/** The cookie codec: plain Machine IDs without secrets, signed values with them (the first secret signs). */
export function createCookieCodec (secrets: readonly string[] = []): CookieCodec {
  return secrets.length === 0 ? createPlainCodec() : createSignedCodec(secrets)
}

/**
 * Builds the reader of one cookie from a Cookie request header: the raw value of cookie `name`, or undefined when
 * absent. Only this cookie is looked at (no full parse on the hot path). Cookies are separated by ";" followed by
 * optional spaces or tabs: browsers send "; ", but other clients and proxies send ";" alone, and a cookie missed
 * there would silently move the user off their Machine. A value ends at the next ";", so it never holds one: a
 * header `name=m2;app=evil` is the value `m2` and a separate cookie `app`; what keeps a value from reaching a header
 * is the codec's strict validation, not the splitting. The value is returned as sent, without trimming, unquoting or
 * percent-decoding, so that the codec sees exactly what the client sent.
 */
export function createCookieReader (name: string): (header: string) => string | undefined {
  const first = `${name}=`
  return function readCookie (header) {
    let at = header.indexOf(first)
    while (at !== -1) {
      if (startsCookie(header, at)) {
        const start = at + first.length
        const end = header.indexOf(';', start)
        return end === -1 ? header.slice(start) : header.slice(start, end)
      }
      at = header.indexOf(first, at + 1)
    }
    return undefined
  }
}

/** Whether a cookie pair may begin at `at`: only spaces or tabs lie between it and the header's start or a ";". */
function startsCookie (header: string, at: number): boolean {
  for (let i = at - 1; i >= 0; i--) {
    const code = header.charCodeAt(i)
    if (code === 59 /* ; */) return true
    if (code !== 32 && code !== 9) return false
  }
  return true
}

/**
 * The Set-Cookie header that pins a browser to the Machine `value` names, with exactly the configured attributes:
 * Path, Max-Age (left out for a session cookie), Domain, HttpOnly, Secure, SameSite, Partitioned. Serialised by the
 * `cookie` library, the one `@fastify/cookie` uses.
 */
export function stickySetCookie (attributes: CookieAttributes, value: string): string {
  return stringifySetCookie({
    name: attributes.cookieName,
    value,
    path: attributes.cookiePath,
    maxAge: attributes.cookieMaxAgeSeconds ?? undefined,
    domain: attributes.cookieDomain ?? undefined,
    httpOnly: attributes.cookieHttpOnly,
    secure: attributes.cookieSecure,
    sameSite: attributes.cookieSameSite.toLowerCase() as 'lax',
    partitioned: attributes.cookiePartitioned
  })
}

/** A rejected value as it may appear in a log line: at most 32 characters, escaped. */
export function describeRejectedValue (value: string): string {
  const head = JSON.stringify(value.slice(0, 32))
  return value.length > 32 ? `${head}... (${value.length} characters)` : head
}
