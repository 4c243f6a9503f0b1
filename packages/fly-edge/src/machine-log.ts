// What of a Machine's output the edge prints without --verbose. Navigator logs JSON lines (pino) when its output is
// not a terminal, or text lines (`<time> <LEVEL> <message> key=value ...`) with `logging.format: text`; its warnings
// and errors are what a person must not miss: a tenant or standalone server that keeps exiting, a port in use, a
// child's stderr. Any other line (a crash, Node's own messages) too.

/** pino's level numbers from warn up. */
const LEVELS: Partial<Record<number, string>> = { 40: 'warn', 50: 'error', 60: 'fatal' }
/** A text log line below warn: its second word is the level. */
const QUIET_TEXT_LINE = /^\S+ (?:TRACE|DEBUG|INFO) /
/** Fields of Navigator's process lines worth a person's eye, in this order. */
const DETAILS = ['code', 'signal', 'port', 'reason'] as const

function parse (line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null
  try {
    const entry: unknown = JSON.parse(line)
    return typeof entry === 'object' && entry !== null ? entry as Record<string, unknown> : null
  } catch {
    return null
  }
}

/**
 * The text to show for one output line of a Machine, or null for a line below warn: `warn action-cable: standalone
 * server exited unexpectedly (code 1)`, `warn action-cable (stderr): <the child's line>`, or the line as it is (a
 * text log line at warn or above, anything else that is not a log line).
 */
export function noteworthyOutput (line: string): string | null {
  const entry = parse(line)
  if (entry === null) return line.trim() === '' || QUIET_TEXT_LINE.test(line) ? null : line
  const level = LEVELS[entry.level as number]
  if (level === undefined) return null
  const name = typeof entry.process === 'string' ? ` ${entry.process}${entry.stream === 'stderr' ? ' (stderr)' : ''}` : ''
  const details = DETAILS.filter((key) => entry[key] !== undefined && entry[key] !== null).map((key) => `${key} ${String(entry[key])}`)
  const error = entry.err as { message?: unknown } | undefined
  if (typeof error?.message === 'string') details.push(error.message)
  return `${level}${name}: ${String(entry.msg ?? '')}${details.length > 0 ? ` (${details.join(', ')})` : ''}`
}
