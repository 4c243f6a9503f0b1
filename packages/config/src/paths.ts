// The one path matcher, shared by sticky sessions (`paths`) and standalone servers (`match_path`):
//   "/cable"  matches exactly /cable
//   "/app/*"  matches /app, /app/ and everything below it
//   "*/admin" matches every path that ends in /admin
// Query strings are ignored; an empty list of patterns matches every path.

export type PathMatcher = (path: string) => boolean

/** Why `pattern` is not a valid path pattern, or null when it is. */
export function pathPatternProblem (pattern: string): string | null {
  if (typeof pattern !== 'string' || pattern === '') return 'a path pattern must be a non-empty string'
  if (/[\s?#]/.test(pattern)) return `path pattern ${JSON.stringify(pattern)} must not contain spaces, "?" or "#"`
  if (!pattern.startsWith('/') && !pattern.startsWith('*/')) {
    return `path pattern ${JSON.stringify(pattern)} must start with "/" or "*/"`
  }
  const stars = pattern.split('*').length - 1
  const allowed = pattern.startsWith('*/') ? stars === 1 : stars === 0 || (stars === 1 && pattern.endsWith('/*'))
  if (!allowed) {
    return `path pattern ${JSON.stringify(pattern)} may use "*" only as "/prefix/*" or "*/suffix"`
  }
  return null
}

function withoutQuery (path: string): string {
  const query = path.indexOf('?')
  return query === -1 ? path : path.slice(0, query)
}

/** Compiles one pattern; throws a TypeError for a pattern that `pathPatternProblem` rejects. */
export function compilePathPattern (pattern: string): PathMatcher {
  const problem = pathPatternProblem(pattern)
  if (problem !== null) throw new TypeError(problem)
  if (pattern.startsWith('*/')) {
    const suffix = pattern.slice(1)
    return (path) => withoutQuery(path).endsWith(suffix)
  }
  if (pattern.endsWith('/*')) {
    const base = pattern.slice(0, -2)
    const below = base + '/'
    return (path) => {
      const p = withoutQuery(path)
      return p === base || p.startsWith(below)
    }
  }
  return (path) => withoutQuery(path) === pattern
}

const matchEverything: PathMatcher = () => true

/** Compiles a list of patterns into one matcher (any pattern matches); an empty list matches every path. */
export function compilePathPatterns (patterns: readonly string[]): PathMatcher {
  if (patterns.length === 0) return matchEverything
  const matchers = patterns.map(compilePathPattern)
  if (matchers.length === 1) return matchers[0]
  return (path) => {
    for (const matcher of matchers) {
      if (matcher(path)) return true
    }
    return false
  }
}
