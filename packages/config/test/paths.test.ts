import { test } from 'tap'
import { compilePathPattern, compilePathPatterns, pathPatternProblem } from '../src/paths.js'

test('an exact pattern matches only that path, ignoring the query string', async (t) => {
  const match = compilePathPattern('/cable')
  t.ok(match('/cable'))
  t.ok(match('/cable?token=1'))
  t.notOk(match('/cable/'))
  t.notOk(match('/cables'))
  t.notOk(match('/app/cable'))
})

test('a "/prefix/*" pattern matches the prefix, its slash and everything below', async (t) => {
  const match = compilePathPattern('/app/*')
  for (const path of ['/app', '/app/', '/app/x', '/app/x/y/z', '/app?x=1']) t.ok(match(path), path)
  for (const path of ['/application', '/ap', '/', '/other/app/x']) t.notOk(match(path), path)
  const all = compilePathPattern('/*')
  t.ok(all('/'))
  t.ok(all('/anything/at/all'))
})

test('a "*/suffix" pattern matches every path that ends with the suffix', async (t) => {
  const match = compilePathPattern('*/admin')
  for (const path of ['/admin', '/x/admin', '/a/b/admin', '/x/admin?y=1']) t.ok(match(path), path)
  for (const path of ['/admin/', '/administrator', '/x/admins', '/xadmin']) t.notOk(match(path), path)
})

test('a list matches when any pattern matches, and an empty list matches everything', async (t) => {
  const match = compilePathPatterns(['/app/*', '/cable', '*/admin'])
  t.ok(match('/app/1'))
  t.ok(match('/cable'))
  t.ok(match('/x/admin'))
  t.notOk(match('/other'))
  const everything = compilePathPatterns([])
  t.ok(everything('/'))
  t.ok(everything('/whatever?x'))
})

test('patterns that do not start with "/" or "*/", or misuse "*", are rejected', async (t) => {
  for (const pattern of ['app', '', '*admin', '/app*', '/a/*/b', '*/a/*', '/a b', '/a?b']) {
    t.type(pathPatternProblem(pattern), 'string', JSON.stringify(pattern))
    t.throws(() => compilePathPattern(pattern), TypeError)
  }
  t.throws(() => compilePathPatterns(['/ok', 'bad']), TypeError)
  for (const pattern of ['/', '/cable', '/app/*', '*/admin', '/*']) t.equal(pathPatternProblem(pattern), null, pattern)
})
