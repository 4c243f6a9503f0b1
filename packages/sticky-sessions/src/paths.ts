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
