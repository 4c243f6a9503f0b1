import { test } from 'tap'
import fc from 'fast-check'
import { compilePathPattern, compilePathPatterns, pathPatternProblem } from '../src/paths.js'

// Hostile input (issue 7): the one path matcher, against a reference model written differently (regular
// expressions built from the pattern's three shapes), on valid patterns and on any path a client can send.

function escape (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/** The reference model: the three pattern shapes (exact path, prefix, suffix) as anchored regular expressions (the `s` flag: `.` is anything). */
function referenceMatcher (pattern: string): (path: string) => boolean {
  let regex: RegExp
  if (pattern.startsWith('*/')) regex = new RegExp(`^.*${escape(pattern.slice(1))}$`, 's')
  else if (pattern.endsWith('/*')) regex = new RegExp(`^${escape(pattern.slice(0, -2))}(?:/.*)?$`, 's')
  else regex = new RegExp(`^${escape(pattern)}$`, 's')
  return (path) => regex.test(path.split('?')[0])
}

// Few distinct segments, so that generated paths often share prefixes and suffixes with generated patterns.
const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('app', 'cable', 'admin', 'a', 'x.y', '%2e%2e', '..', '.', 'é', '' as string) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 4 }).filter((s) => !/[\s?#*/]/.test(s)) }
)
const segments = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => '/' + parts.join('/'))

const validPattern = fc.oneof(
  segments,
  segments.map((base) => (base.endsWith('/') ? base + '*' : base + '/*')),
  segments.map((suffix) => '*' + suffix)
).filter((pattern) => pathPatternProblem(pattern) === null)

const hostilePath = fc.oneof(
  { weight: 3, arbitrary: segments },
  { weight: 2, arbitrary: fc.tuple(segments, fc.string({ maxLength: 6 })).map(([path, query]) => `${path}?${query}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '?', '*', '//', '/app?', '?/app', '/app\0', '/app\r\n', '/\uD800', '/%00') }
)

test('on valid patterns, the matcher agrees with a reference model built from regular expressions', async (t) => {
  fc.assert(fc.property(validPattern, fc.array(hostilePath, { minLength: 1, maxLength: 20 }), (pattern, paths) => {
    const match = compilePathPattern(pattern)
    const reference = referenceMatcher(pattern)
    return paths.every((path) => match(path) === reference(path))
  }), { numRuns: 5000, seed: 7 })
  t.pass('5000 patterns, up to 20 paths each')
})

test('a list of patterns matches exactly when one of its patterns does, and the empty list matches everything', async (t) => {
  fc.assert(fc.property(fc.array(validPattern, { maxLength: 5 }), hostilePath, (patterns, path) => {
    const expected = patterns.length === 0 || patterns.some((pattern) => referenceMatcher(pattern)(path))
    return compilePathPatterns(patterns)(path) === expected
  }), { numRuns: 3000, seed: 7 })
  t.pass('3000 lists')
})

test('the matcher never throws, whatever the path (NUL, CR/LF, lone surrogates, 100 KB)', async (t) => {
  const huge = '/' + 'a/'.repeat(50_000)
  fc.assert(fc.property(validPattern, hostilePath, (pattern, path) => {
    const match = compilePathPattern(pattern)
    return typeof match(path) === 'boolean' && typeof match(huge + path) === 'boolean'
  }), { numRuns: 2000, seed: 7 })
  t.pass('2000 pattern and path pairs')
})

test('any string is either a valid pattern that compiles or a problem that makes compiling throw a TypeError', async (t) => {
  const anyPattern = fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }),
    fc.string({ unit: fc.constantFrom('/', '*', 'a', '?', '#', ' ', '.', '\0', '\n'), maxLength: 10 }))
  fc.assert(fc.property(anyPattern, (pattern) => {
    const problem = pathPatternProblem(pattern)
    try {
      compilePathPattern(pattern)
      return problem === null
    } catch (err) {
      return problem !== null && err instanceof TypeError && err.message === problem
    }
  }), { numRuns: 5000, seed: 7 })
  t.pass('5000 candidate patterns')
})
