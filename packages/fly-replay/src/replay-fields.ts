// The `key=value;key="a,b"` syntax shared by fly-replay, fly-replay-src and fly-replay-failed. Reading is tolerant:
// malformed parts are skipped and nothing throws, because these values come from the network.

/** Longest header value we look at; anything longer is not something Fly sent. */
const MAX_VALUE_LENGTH = 8192

/** Splits a header value into lower-cased keys and unquoted values; null when it is not a usable string. */
export function readFields (value: unknown): Map<string, string> | null {
  if (Array.isArray(value)) value = value[0]
  if (typeof value !== 'string' || value === '' || value.length > MAX_VALUE_LENGTH) return null
  const fields = new Map<string, string>()
  let index = 0
  while (index < value.length) {
    let end = index
    let quoted = false
    while (end < value.length) {
      const char = value[end]
      if (char === '"') quoted = !quoted
      else if (char === ';' && !quoted) break
      end++
    }
    const part = value.slice(index, end)
    index = end + 1
    const equals = part.indexOf('=')
    if (equals <= 0) continue
    const key = part.slice(0, equals).trim().toLowerCase()
    let text = part.slice(equals + 1).trim()
    if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) text = text.slice(1, -1)
    if (key !== '' && !fields.has(key)) fields.set(key, text)
  }
  return fields.size === 0 ? null : fields
}

/** A field's value when it matches `grammar`, else undefined. */
export function validField (fields: Map<string, string>, key: string, grammar: RegExp): string | undefined {
  const text = fields.get(key)
  return text !== undefined && grammar.test(text) ? text : undefined
}
