import { ANSWERED, answer, NEXT, type Step } from '@navigator/proxy'

const BAD_REQUEST_HEADERS = Object.freeze(['content-type', 'text/plain; charset=utf-8'])
const BAD_REQUEST_BODY = 'Bad Request: a path segment hides an encoded slash next to a dot segment\n'

/** Only a path with one of these can hold a dot segment or hide one: most paths skip the work. */
const MAY_HOLD_DOTS = /\/\.|\.\.|%2e|%2f|%5c/i

/**
 * Resolves the dot segments of a path as RFC 3986 (5.2.4) does, a percent-encoded dot counting as a dot ("/a/%2e%2e/b"
 * is "/b"); a segment is otherwise kept as sent. A segment that decodes to more than one segment with a dot segment
 * among them ("..%2fsecret") cannot be routed one way and read another by the app: null.
 */
export function resolveDotSegments (path: string): string | null {
  const segments = path.split('/')
  const out: string[] = []
  let endsInDirectory = false
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]
    const lower = segment.toLowerCase()
    if ((lower.includes('%2f') || lower.includes('%5c')) && hidesDotSegment(segment)) return null
    const dots = lower.includes('%2e') ? lower.replaceAll('%2e', '.') : segment
    endsInDirectory = dots === '.' || dots === '..'
    if (dots === '.') continue
    if (dots === '..') {
      out.pop()
      continue
    }
    out.push(segment)
  }
  return '/' + out.join('/') + (endsInDirectory && out.length > 0 ? '/' : '')
}

function hidesDotSegment (segment: string): boolean {
  let decoded: string
  try {
    decoded = decodeURIComponent(segment)
  } catch {
    return false
  }
  return decoded.split(/[/\\]/).some((part) => part === '.' || part === '..')
}

/**
 * The first step: every later one, and the upstream, sees the path with its dot segments resolved
 * (`/app/../secret.txt` is `/secret.txt`, as nginx routes it), so no step can match one path while the app reads
 * another. A path that hides a dot segment behind an encoded slash gets 400. Paths that are not origin-form (`*`, an
 * absolute URL) are left to the steps as they are.
 */
export function normalisePath (): Step {
  return {
    name: 'normalise-path',
    run (ctx) {
      const path = ctx.path
      // Most paths hold neither a dot nor an escape: two searches, and no regular expression, for them.
      if (path.indexOf('.') === -1 && path.indexOf('%') === -1) return NEXT
      if (path.charCodeAt(0) !== 47 /* / */ || !MAY_HOLD_DOTS.test(path)) return NEXT
      const resolved = resolveDotSegments(path)
      if (resolved === null) {
        answer(ctx, 400, BAD_REQUEST_HEADERS, BAD_REQUEST_BODY)
        return ANSWERED
      }
      if (resolved !== path) ctx.setPath(resolved)
      return NEXT
    }
  }
}
