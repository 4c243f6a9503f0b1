// Memory sizes as written for a tenant's memory_limit: "512M", "1G", "1.5G", "256Mi", "2048MB", or a number of bytes.

const UNIT_BYTES: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/**
 * JSON Schema / RegExp source for a memory size. K, M, G and T are binary (1024-based) with or without the `i`, as
 * the Go Navigator and Docker read them; a trailing B is allowed.
 */
export const MEMORY_SIZE_PATTERN = '^(?:\\d+(?:\\.\\d+)?)\\s*(?:[KkMmGgTt]i?[Bb]?)?$'

const MEMORY_SIZE = /^(\d+(?:\.\d+)?)\s*(?:([KkMmGgTt])i?[Bb]?)?$/

/** The size in bytes (rounded down to a whole byte), or null when `text` is not a memory size. */
export function parseMemorySize (text: string): number | null {
  const match = MEMORY_SIZE.exec(text.trim())
  if (match === null) return null
  return Math.floor(Number(match[1]) * UNIT_BYTES[(match[2] ?? '').toLowerCase()])
}
