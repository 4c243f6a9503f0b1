// The TurboCable hub's messages, read and written byte for byte as the Go Navigator does with encoding/json: object
// keys matched without regard to case (the last of duplicates wins), `type` and `stream` strings (or null), a
// broadcast's `data` passed on as its raw JSON, compacted, with `<`, `>`, `&`, U+2028 and U+2029 escaped in strings as
// Go escapes them. JSON.parse and JSON.stringify alone would reorder integer-like keys, round large numbers and
// leave those characters as they are.

/** A client message: its type and stream ('' when absent or null). */
export interface ClientMessage {
  type: string
  stream: string
}

/** A broadcast body: its stream and the message every subscriber gets. */
export interface Broadcast {
  stream: string
  message: string
}

/** The Go Navigator's answers to a broadcast body it cannot use. */
export const INVALID_JSON = 'Invalid JSON\n'
export const STREAM_REQUIRED = 'Stream required\n'

/** A client message, or null when the Go Navigator would ignore it (not a JSON object, a field of the wrong type). */
export function parseClientMessage (text: string): ClientMessage | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const members = objectMembers(text)
  const type = stringMember(text, members.get('type'))
  const stream = stringMember(text, members.get('stream'))
  if (type === null || stream === null) return null
  return { type, stream }
}

/** `{"type":"subscribed","stream":...}`, the answer to a subscription. */
export function subscribedMessage (stream: string): string {
  return `{"type":"subscribed","stream":${goString(stream)}}`
}

/**
 * A broadcast body (`{"stream": "...", "data": ...}`, any other key ignored) as the message for the stream's
 * subscribers, `{"type":"message","stream":...,"data":...}` (no `data` when the body has none); or the answer to a
 * body that is not a JSON object, has a stream that is not a string, or none.
 */
export function parseBroadcast (text: string): Broadcast | string {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return INVALID_JSON
  }
  if (value === null) return STREAM_REQUIRED
  if (typeof value !== 'object' || Array.isArray(value)) return INVALID_JSON
  const members = objectMembers(text)
  const stream = stringMember(text, members.get('stream'))
  if (stream === null) return INVALID_JSON
  if (stream === '') return STREAM_REQUIRED
  const data = members.get('data')
  const head = `{"type":"message","stream":${goString(stream)}`
  return { stream, message: data === undefined ? `${head}}` : `${head},"data":${goCompact(text, data[0], data[1])}}` }
}

/** Where a value starts and ends in the text. */
type Span = readonly [number, number]

/**
 * The members of `text`, a well-formed JSON object (JSON.parse has accepted it, so the scan need not check what it
 * skips): each key in lower case (as Go matches struct fields), with the span of its last value.
 */
function objectMembers (text: string): Map<string, Span> {
  const members = new Map<string, Span>()
  let i = skipSpace(text, skipSpace(text, 0) + 1)
  while (text.charCodeAt(i) !== 0x7d /* } */) {
    const keyEnd = stringEnd(text, i)
    const key = (JSON.parse(text.slice(i, keyEnd)) as string).toLowerCase()
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1)
    const end = valueEnd(text, start)
    members.set(key, [start, end])
    i = skipSpace(text, end)
    if (text.charCodeAt(i) === 0x2c /* , */) i = skipSpace(text, i + 1)
  }
  return members
}

/** A member that must be a string: its value ('' when absent or null), or null when it is another type. */
function stringMember (text: string, span: Span | undefined): string | null {
  if (span === undefined) return ''
  const value: unknown = JSON.parse(text.slice(span[0], span[1]))
  if (value === null) return ''
  return typeof value === 'string' ? value : null
}

function isSpace (code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09
}

function skipSpace (text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++
  return i
}

/** The index after the string that opens at `i`. */
function stringEnd (text: string, i: number): number {
  let j = i + 1
  for (;;) {
    const code = text.charCodeAt(j)
    if (code === 0x22 /* " */) return j + 1
    j += code === 0x5c /* \ */ ? 2 : 1
  }
}

/** The index after the value that starts at `i`. */
function valueEnd (text: string, i: number): number {
  let depth = 0
  for (; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0x22) {
      i = stringEnd(text, i) - 1
      if (depth === 0) return i + 1
    } else if (code === 0x7b || code === 0x5b /* { [ */) {
      depth++
    } else if (code === 0x7d || code === 0x5d /* } ] */) {
      if (depth === 0) return i
      if (--depth === 0) return i + 1
    } else if (depth === 0 && (code === 0x2c || isSpace(code))) {
      return i
    }
  }
  return i
}

/** What Go's encoder writes for these characters in a string (its HTML-safe escaping). */
function goEscape (code: number): string | null {
  switch (code) {
    case 0x3c: return '\\u003c'
    case 0x3e: return '\\u003e'
    case 0x26: return '\\u0026'
    case 0x2028: return '\\u2028'
    case 0x2029: return '\\u2029'
    default: return null
  }
}

/** The JSON value text[from, to) as Go's json.Compact with HTML escaping writes it. */
function goCompact (text: string, from: number, to: number): string {
  let out = ''
  let copied = from
  let inString = false
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === 0x5c) {
        i++
        continue
      }
      if (code === 0x22) {
        inString = false
        continue
      }
      const escape = goEscape(code)
      if (escape !== null) {
        out += text.slice(copied, i) + escape
        copied = i + 1
      }
    } else if (code === 0x22) {
      inString = true
    } else if (isSpace(code)) {
      out += text.slice(copied, i)
      copied = i + 1
    }
  }
  return out + text.slice(copied, to)
}

/** A string as Go's encoder writes it. */
function goString (value: string): string {
  const json = JSON.stringify(value)
  return goCompact(json, 0, json.length)
}
