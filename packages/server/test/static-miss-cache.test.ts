import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'tap'
import { createStaticFileFinder, MISS_CACHE_TTL_MS } from '../src/steps/static-files.js'

function publicDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-static-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'public'))
  return join(dir, 'public')
}

test('a file added after its path was a miss is served within the miss cache TTL, not later', async (t) => {
  const root = publicDir(t)
  const find = createStaticFileFinder(root)
  t.equal(find('/late.txt'), null, 'a miss')
  writeFileSync(join(root, 'late.txt'), 'late\n')
  const started = Date.now()
  let found: string | null = null
  // Bounded poll: the answer must change by itself within the TTL (plus scheduling slack).
  while (Date.now() - started < MISS_CACHE_TTL_MS * 3) {
    const answer = find('/late.txt')
    if (answer !== null) {
      found = (await answer)?.relative ?? null
      break
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(found, '/late.txt', 'the new file is found')
  t.ok(Date.now() - started <= MISS_CACHE_TTL_MS + 500, `found within the TTL (${Date.now() - started} ms)`)
})

test('a removed file stops being served at once (hits are never cached)', async (t) => {
  const root = publicDir(t)
  writeFileSync(join(root, 'gone.txt'), 'soon gone\n')
  const find = createStaticFileFinder(root)
  t.equal((await find('/gone.txt'))?.relative, '/gone.txt')
  rmSync(join(root, 'gone.txt'))
  t.equal(find('/gone.txt'), null)
})

test('a cached miss stays a miss, while other paths are still looked up', async (t) => {
  const root = publicDir(t)
  writeFileSync(join(root, 'here.txt'), 'here\n')
  const find = createStaticFileFinder(root)
  t.equal(find('/app/page'), null)
  t.equal(find('/app/page'), null, 'the same miss again')
  t.equal((await find('/here.txt'))?.relative, '/here.txt', 'a file next to cached misses is found')
  t.equal(find('/../secret'), null, 'an escape attempt is still refused')
})
