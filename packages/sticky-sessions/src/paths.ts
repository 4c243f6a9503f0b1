import { compilePathPatterns, type PathMatcher } from '@navigator/fly-replay'
import { InvalidStickyOptionError } from './errors.js'

/**
 * Compiles the `paths` option with the one path matcher of @navigator/config ("/cable" exact, "/app/*" the prefix
 * and everything below, "*\/admin" any path ending so; query strings ignored; empty = every path).
 */
export function compileStickyPaths (paths: unknown): PathMatcher {
  if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) {
    throw new InvalidStickyOptionError('paths', 'must be a list of path patterns')
  }
  try {
    return compilePathPatterns(paths)
  } catch (err) {
    throw new InvalidStickyOptionError('paths', (err as Error).message)
  }
}

/**
 * The request path the sticky patterns are matched against: the URL as sent when its path has no "%" (the common
 * case costs one search), otherwise the path percent-decoded once, as the app's router reads it (`/%61pp/x` is
 * `/app/x` to Rails). A decoded "?" stays encoded, so that the matcher does not take the rest of the path for a query;
 * the query is dropped (the patterns ignore it). A malformed escape leaves the URL as sent.
 */
export function stickyMatchPath (url: string): string {
  const percent = url.indexOf('%')
  if (percent === -1) return url
  const query = url.indexOf('?')
  if (query !== -1 && query < percent) return url
  const path = query === -1 ? url : url.slice(0, query)
  let decoded: string
  try {
    decoded = decodeURIComponent(path)
  } catch {
    return url
  }
  return decoded.includes('?') ? decoded.replaceAll('?', '%3F') : decoded
}
