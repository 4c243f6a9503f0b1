/**
 * Log lines as text, for people and for grep: `<RFC 3339 time> <LEVEL> <message> key=value ...`, a value quoted
 * (as a JSON string) only when it must be: empty, or holding a space, a quote, `=` or a control character. pino
 * writes JSON; this stream turns each line into text before it reaches its destination, so every line of the process
 * (Navigator's own, a child's output, a request's) takes the one format.
 */

/** Where log lines go (the batched stdout, a log file, pino-pretty). */
export interface LineSink {
  write (line: string): boolean
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
/** Fields the line's head already shows. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg'])
const NEEDS_QUOTES = /[\s"=\\\p{Cc}]/u

export function textValue (value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value)
  if (typeof value === 'string') return value === '' || NEEDS_QUOTES.test(value) ? JSON.stringify(value) : value
  // An error as pino serialises it: its message says what happened; the stack stays in JSON logs.
  const error = value as { type?: unknown, message?: unknown, stack?: unknown } | undefined
  if (error !== undefined && typeof error.message === 'string' && typeof error.stack === 'string') return textValue(error.message)
  return textValue(JSON.stringify(value) ?? '')
}

/** One pino JSON line as a text line (with its newline); a line that is not JSON is passed on as it is. */
export function textLine (json: string): string {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(json) as Record<string, unknown>
  } catch {
    return json.endsWith('\n') ? json : json + '\n'
  }
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString() : new Date().toISOString()
  const level = LEVEL_NAMES[record.level as number] ?? String(record.level).toUpperCase()
  let line = `${time} ${level} ${typeof record.msg === 'string' ? record.msg : ''}`
  for (const [key, value] of Object.entries(record)) {
    if (!HEAD_FIELDS.has(key) && value !== undefined) line += ` ${key}=${textValue(value)}`
  }
  return line + '\n'
}

/** A pino destination that writes text lines to `sink`. */
export class TextLines {
  constructor (private readonly sink: LineSink) {}

  write (json: string): boolean {
    return this.sink.write(textLine(json))
  }
}
