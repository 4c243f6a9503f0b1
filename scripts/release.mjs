#!/usr/bin/env node
// Writes a release that installs without the npm registry's copy of Navigator:
// - one tarball per package (`pnpm pack`: `workspace:*` dependencies become the packages' versions), installable with
//   `npm install ./release/*.tgz` (their own dependencies, such as fastify, still come from a registry);
// - `navigator.mjs`: the navigator CLI and everything it loads in one file, run with plain `node`, no node_modules.
// Run after a build (`npx pnpm@10.34.9 release` does both). `--out DIR` writes elsewhere than ./release.
import { spawnSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const { values } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'release') } } })
const OUT = resolve(values.out)
/** recheck (the config's ReDoS checker), whose source the bundle carries as a string: see lazyRequires. */
const RECHECK_FILE = createRequire(join(ROOT, 'packages/config/package.json')).resolve('recheck/lib/browser.js')

/** The packages a user installs: every folder of packages/ with a package.json that is not private. */
function packages () {
  return readdirSync(join(ROOT, 'packages'))
    .map((name) => join(ROOT, 'packages', name))
    .filter((dir) => {
      try {
        return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).private !== true
      } catch {
        return false
      }
    })
}

/**
 * A dist file whose source is gone (a module renamed or removed since the last clean build) would be shipped: the
 * release stops instead. A fresh clone never has one.
 */
function checkBuildOutput (dir) {
  const dist = join(dir, 'dist')
  for (const entry of readdirSync(dist, { recursive: true })) {
    const file = String(entry)
    if (!file.endsWith('.js')) continue
    const source = join(dir, 'src', file.replace(/\.js$/, '.ts'))
    if (!existsSync(source)) throw new Error(`${join(dist, file)} has no source (${source}): delete ${dist} and build again`)
  }
}

function pack (dir) {
  checkBuildOutput(dir)
  // pnpm (a root dev dependency) resolves workspace:* in the packed package.json; npm pack would leave it as is.
  const result = spawnSync(join(ROOT, 'node_modules/.bin/pnpm'), ['pack', '--pack-destination', OUT], { cwd: dir, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`pnpm pack in ${dir} failed:\n${result.error?.message ?? ''}${result.stdout}${result.stderr}`)
}

/**
 * The built packages load a few modules lazily, through createRequire, so that a running server never pays for
 * what it does not use (the config schema checker, the YAML parser, undici's pool alone, pino-pretty). A bundler
 * cannot follow createRequire; written as plain require() calls, esbuild bundles them and still runs each only when
 * it is first called.
 */
const lazyRequires = {
  name: 'lazy-requires',
  setup (builder) {
    builder.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]dist[\\/].*\.js$/ }, (args) => {
      let text = readFileSync(args.path, 'utf8')
      text = text
        // recheck runs in a worker thread, which cannot load a module from inside the bundle: it gets the source.
        .replace("return { file: createRequire(import.meta.url).resolve('recheck/lib/browser.js') };", () =>
          `return { source: ${JSON.stringify(readFileSync(RECHECK_FILE, 'utf8'))} };`)
        .replace(/createRequire\(import\.meta\.url\)\(UNDICI_POOL_FILE\)/g, "require('undici/lib/dispatcher/pool.js')")
        .replace(/const require = createRequire\(import\.meta\.url\);?/g, '')
        .replace(/createRequire\(import\.meta\.url\)\(/g, 'require(')
        .replace(/JSON\.parse\(readFileSync\(new URL\('\.\.\/package\.json', import\.meta\.url\), 'utf8'\)\)/g, () =>
          JSON.stringify({ version: JSON.parse(readFileSync(join(ROOT, 'packages/server/package.json'), 'utf8')).version }))
      if (text.includes("'recheck/lib/browser.js'")) throw new Error(`${args.path}: recheck's file is still looked up; update lazyRequires`)
      return { contents: text, loader: 'js' }
    })
  }
}

async function bundle () {
  const outfile = join(OUT, 'navigator.mjs')
  await build({
    entryPoints: [join(ROOT, 'packages/server/bin/navigator.js')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'linked',
    // CommonJS dependencies require Node's built-ins; an ES module has no require of its own.
    banner: { js: "import { createRequire as __navigatorRequire } from 'node:module'; const require = __navigatorRequire(import.meta.url);" },
    plugins: [lazyRequires],
    logLevel: 'warning'
  })
  // esbuild lists the licences of what it bundled; recheck is carried as a string, so its licence is added here.
  const license = readFileSync(join(RECHECK_FILE, '../../LICENSE'), 'utf8')
  appendFileSync(`${outfile}.LEGAL.txt`, `\nBundled license information (carried as source text):\n\nrecheck (lib/browser.js):\n${license}`)
  return outfile
}

rmSync(OUT, { recursive: true, force: true })
mkdirSync(OUT, { recursive: true })
for (const dir of packages()) pack(dir)
const bundled = await bundle()
for (const file of readdirSync(OUT).sort()) process.stdout.write(`${join(OUT, file)}\n`)
process.stdout.write(`run: node ${bundled} config.yml\n`)
