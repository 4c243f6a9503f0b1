import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { test } from 'tap'

// What `pnpm publish -r` would publish, checked without publishing: every package's manifest carries what a
// registry page and an installer need, and `npm pack --dry-run` (what the registry would receive) holds only the
// built code, the bins, the README, the licence and the manifest, with every file the manifest points at.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const REPOSITORY = 'git+https://github.com/navigator-node/navigator.git'
const SHIPPED = /^(dist\/.+|bin\/.+|README\.md|LICENSE|package\.json)$/

interface Manifest {
  name: string
  version: string
  private?: boolean
  description?: string
  license?: string
  repository?: { type?: string, url?: string, directory?: string }
  engines?: Record<string, string>
  publishConfig?: Record<string, string>
  main?: string
  types?: string
  files?: string[]
  bin?: Record<string, string>
  exports?: Record<string, string | Record<string, string>>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  scripts?: Record<string, string>
}

const read = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest
const folders = readdirSync(join(ROOT, 'packages')).map((name) => join(ROOT, 'packages', name)).filter((dir) => existsSync(join(dir, 'package.json')))
const publishable = folders.filter((dir) => read(dir).private !== true)
const names = new Set(publishable.map((dir) => read(dir).name))
const rootVersion = read(join(ROOT, 'packages/server')).version

/** Every file the manifest points at: main, types, bins and each exports condition. */
function pointedAt (manifest: Manifest): string[] {
  const targets = [manifest.main, manifest.types, ...Object.values(manifest.bin ?? {})]
  for (const value of Object.values(manifest.exports ?? {})) {
    targets.push(...(typeof value === 'string' ? [value] : Object.values(value)))
  }
  return [...new Set(targets.filter((target): target is string => target !== undefined).map((target) => posix.normalize(target)))]
}

test('every package under packages/ is published (none is private) and they share one version', async (t) => {
  t.equal(publishable.length, folders.length)
  t.equal(publishable.length, 7)
  for (const dir of publishable) t.equal(read(dir).version, rootVersion, `${read(dir).name} ${read(dir).version}`)
})

for (const dir of publishable) {
  const manifest = read(dir)
  const folder = posix.join('packages', dir.slice(join(ROOT, 'packages').length + 1))

  test(`${manifest.name}: the manifest has what publishing and installing need`, async (t) => {
    t.match(manifest.name, /^@navigator\/[a-z-]+$/)
    t.match(manifest.version, /^\d+\.\d+\.\d+$/)
    t.ok((manifest.description ?? '').length > 20, 'a description')
    t.equal(manifest.license, 'MIT')
    t.same(manifest.repository, { type: 'git', url: REPOSITORY, directory: folder })
    t.ok(manifest.engines?.node !== undefined, 'engines.node')
    t.same(manifest.publishConfig, { access: 'public' }, 'a scoped package is public')
    t.ok(Array.isArray(manifest.files) && manifest.files.length > 0, 'files lists what is shipped')
    t.ok(manifest.files?.includes('dist'))
    t.equal(manifest.scripts?.test?.startsWith('tap '), true, 'a test script')
    const main = manifest.exports?.['.']
    t.type(main, 'object', 'an exports map')
    t.same(Object.keys(main as Record<string, string>), ['types', 'default'], 'exports "." names its types first')
    t.equal(manifest.types, (main as Record<string, string>).types)
    t.equal(manifest.main, (main as Record<string, string>).default)
    t.equal(manifest.exports?.['./package.json'], './package.json')
    for (const [name, range] of Object.entries({ ...manifest.dependencies, ...manifest.peerDependencies })) {
      if (range.startsWith('workspace:')) {
        t.equal(range, 'workspace:*', `${name}: pnpm writes the version when it packs`)
        t.ok(names.has(name), `${name} is published too`)
      }
    }
    t.notOk(Object.hasOwn(manifest.dependencies ?? {}, 'fastify') && manifest.peerDependencies?.fastify !== undefined, 'fastify is a dependency or a peer, not both')
  })

  test(`${manifest.name}: npm pack holds the built code, bins, README, LICENSE and manifest, and every file they point at`, async (t) => {
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8' })
    const [packed] = JSON.parse(stdout) as Array<{ name: string, version: string, files: Array<{ path: string }> }>
    t.equal(packed.name, manifest.name)
    const files = packed.files.map((file) => file.path)
    t.same(files.filter((file) => !SHIPPED.test(file)), [], 'nothing else (no sources, tests, configs)')
    t.same(files.filter((file) => file.startsWith('dist/') && /\.test\.|\.tsbuildinfo$/.test(file)), [], 'no test or build-state files')
    for (const required of ['README.md', 'LICENSE', 'package.json']) t.ok(files.includes(required), required)
    for (const target of pointedAt(manifest)) {
      t.ok(files.includes(target), `${target} is packed`)
      if (target.endsWith('.js') && target.startsWith('dist/')) t.ok(files.includes(target.replace(/\.js$/, '.d.ts')), `${target} has its types`)
    }
  })
}

test('the coverage gate of scripts/test.mjs fails a gated package that is missing from the coverage summary', async (t) => {
  const { coverageChecks } = await import(join(ROOT, 'scripts/test.mjs')) as {
    coverageChecks: (summary: Record<string, { lines: { total: number, covered: number } }>) => { checks: Array<{ name: string, ok: boolean, detail: string }>, reported: string[] }
  }
  const { checks, reported } = coverageChecks({
    total: { lines: { total: 200, covered: 150 } },
    [join(ROOT, 'packages/config/src/load.ts')]: { lines: { total: 100, covered: 96 } },
    [join(ROOT, 'packages/fly-replay/src/rules.ts')]: { lines: { total: 100, covered: 90 } },
    [join(ROOT, 'packages/proxy/src/proxy.ts')]: { lines: { total: 10, covered: 5 } }
  })
  t.same(checks.map(({ name, ok, detail }) => [name.split(' ')[3], ok, detail]), [
    ['config', true, '96 %'],
    ['fly-replay', false, '90 %'],
    ['sticky-sessions', false, 'not in the coverage summary']
  ])
  t.same(reported, ['line coverage of proxy: 50 % (reported, not gated)'])
})
