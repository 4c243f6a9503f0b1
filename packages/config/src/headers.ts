// Header maps of the config (a reverse proxy's headers and response_headers, the health check's response headers),
// checked with Node's own validators: a header Node would refuse to send is a config error with a position rather
// than a 502 on every request.

import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { KeyPath, ProblemCollector } from './problems.js'

/** A `name: value` map of headers, names in lower case; a name or value Node would refuse to send is a problem at its key. */
export function headerMap (value: unknown, at: KeyPath, problems: ProblemCollector): Record<string, string> {
  const headers: Record<string, string> = {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return headers
  for (const [name, text] of Object.entries(value)) {
    if (typeof text !== 'string') continue
    try {
      validateHeaderName(name)
      validateHeaderValue(name, text)
      headers[name.toLowerCase()] = text
    } catch (err) {
      problems.add([...at, name], `not a header Node can send: ${(err as Error).message}`)
    }
  }
  return headers
}
