import { spawn, spawnSync } from 'node:child_process'
import {
  existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync,
  utimesSync, writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t0, { test } from 'tap'
import type { Test } from 'tap'
import { resolveCommand, runDockerfile, stageEnv } from '../../../scripts/dockerfile-steps.mjs'
import type { Build } from '../../../scripts/dockerfile-steps.mjs'
import { freePort, http, processesIn, waitFor } from './helpers.js'

// The repository's two Dockerfiles, built without a container engine by scripts/dockerfile-steps.mjs: their steps
// run unchanged in temporary roots, a real `pnpm install --frozen-lockfile` and release included, and fail here when
// they would fail in Docker. Navigator's own image (the root Dockerfile) must hold Node and the navigator command
// only, which must run and serve with nothing else on PATH; the Rails example's image must run that command as its
// CMD, pass --check on its configuration and serve. The emulation itself is checked first: it must stop where a build
// would break, not carry on against the host.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const RAILS = join(ROOT, 'examples/rails')
const VERSION = JSON.parse(readFileSync(join(ROOT, 'packages/server/package.json'), 'utf8')).version as string

// The install and the TypeScript build take about a minute, more on a busy machine or with a cold npm cache and
// pnpm store. The Rails image then reuses that first stage (the same steps on the same files), as Docker's cache
// would; it builds it again if a file of the repository changed in between, hence room for two builds.
t0.setTimeout(600_000)
const BUILDS = mkdtempSync(join(tmpdir(), 'navigator-dockerfiles-'))
t0.teardown(() => { rmSync(BUILDS, { recursive: true, force: true }) })
const cache = new Map<string, unknown>()

function temp (t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** A build context holding `files`, and a root for the stages; the Dockerfile is the file named Dockerfile. */
function context (t: Test, files: Record<string, string>): { dir: string, root: string } {
  const dir = temp(t, 'dockerfile-context-')
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return { dir, root: temp(t, 'dockerfile-root-') }
}

/** Every file under `dir` as a relative path, symlinks as `path -> target`; folders are implied. */
function tree (dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix)).sort().flatMap((name) => {
    const path = prefix === '' ? name : `${prefix}/${name}`
    const stats = lstatSync(join(dir, path))
    if (stats.isSymbolicLink()) return [`${path} -> ${readlinkSync(join(dir, path))}`]
    return stats.isDirectory() ? tree(dir, path) : [path]
  })
}

/** Where the time went: the steps over a second, and the cached stages. */
function timings (t: Test, build: Build): void {
  const slow = build.timings.filter(({ ms, cached }) => ms > 1000 || cached === true)
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(0)} s`
  t.comment(`steps: ${slow.map(({ line, keyword, ms, cached }) => `line ${line} ${keyword}${cached === true ? ' (cached)' : ''} ${seconds(ms)}`).join(', ')}`)
}

test('the emulation stops where a build would break, instead of running on the host', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['an absolute path in RUN', 'RUN touch /etc/navigator-test', /line 2: RUN names the absolute path \/etc\/navigator-test/],
    ['a package the host lacks', 'RUN apt-get update && apt-get install -y navigator-no-such-package',
      /apt-get would install navigator-no-such-package, which this host lacks/],
    ['provisioning mixed with app steps', 'RUN useradd app && touch ready',
      /mixes provisioning of the operating system with other commands \(touch ready\)/],
    ['a failing command', 'RUN echo about to fail && false', /line 2: RUN echo about to fail && false\nexited with 1:\nabout to fail/],
    ['a missing source', 'COPY nothing-here ./', /COPY nothing-here: not found in the build context/],
    ['an instruction it does not know', 'HEALTHCHECK CMD true', /HEALTHCHECK is not supported/]
  ]
  for (const [name, step, error] of cases) {
    const { dir, root } = context(t, { Dockerfile: `FROM debian:bookworm-slim\n${step}\n` })
    await t.rejects(runDockerfile({ file: join(dir, 'Dockerfile'), context: dir, root }), error, name)
  }
})

test('COPY honours .dockerignore and keeps symlinks; RUN sees ARG, ENV and WORKDIR', async (t) => {
  const { dir, root } = context(t, {
    Dockerfile: [
      'FROM debian:bookworm-slim AS first',
      'ARG GREETING=hello',
      'ENV PLACE=stage \\',
      '    OTHER="two words"',
      'WORKDIR /work',
      'COPY . .',
      '# a comment between steps',
      'RUN echo "$GREETING from $PLACE, $OTHER" > said.txt && ln -s said.txt link.txt',
      'FROM scratch',
      'COPY --from=first /work/ /copied/',
      'CMD ["run", "me"]',
      ''
    ].join('\n'),
    '.dockerignore': 'node_modules\n**/*.log\nkeep/*\n!keep/this.txt\n',
    'app.txt': 'app\n',
    'node_modules/x/index.js': '',
    'deep/debug.log': '',
    'deep/kept.txt': '',
    'keep/this.txt': '',
    'keep/not-this.txt': ''
  })
  symlinkSync('app.txt', join(dir, 'alias.txt'))
  const build = await runDockerfile({ file: join(dir, 'Dockerfile'), context: dir, root })
  t.same(tree(build.final.dir), [
    'copied/.dockerignore',
    'copied/Dockerfile',
    'copied/alias.txt -> app.txt',
    'copied/app.txt',
    'copied/deep/kept.txt',
    'copied/keep/this.txt',
    'copied/link.txt -> said.txt',
    'copied/said.txt'
  ])
  t.equal(readFileSync(join(build.final.dir, 'copied/said.txt'), 'utf8'), 'hello from stage, two words\n')
  t.same(build.final.cmd, ['run', 'me'])
})

test('a stage is taken from the cache only for the same steps on the same files', async (t) => {
  const { dir, root } = context(t, {
    Dockerfile: 'FROM debian:bookworm-slim AS first\nWORKDIR /w\nCOPY app.txt ./\nRUN cat app.txt app.txt > twice.txt\n',
    'app.txt': 'one\n',
    'other.txt': ''
  })
  const stageCache = new Map<string, unknown>()
  const run = async (name: string): Promise<Build> =>
    await runDockerfile({ file: join(dir, 'Dockerfile'), context: dir, root: join(root, name), cache: stageCache })
  const cachedStages = (build: Build): number => build.timings.filter(({ cached }) => cached === true).length
  t.equal(cachedStages(await run('first')), 0, 'built')
  t.equal(cachedStages(await run('again')), 1, 'the same: cached')
  writeFileSync(join(dir, 'other.txt'), 'not copied\n')
  t.equal(cachedStages(await run('other')), 1, 'a file COPY does not take changed: cached')
  writeFileSync(join(dir, 'app.txt'), 'two\n')
  utimesSync(join(dir, 'app.txt'), new Date(), new Date(Date.now() + 5000))
  const changed = await run('changed')
  t.equal(cachedStages(changed), 0, 'a copied file changed: built again')
  t.equal(readFileSync(join(changed.final.dir, 'w/twice.txt'), 'utf8'), 'two\ntwo\n')
})

test('the root Dockerfile builds an image of Node and the navigator command, which runs and serves', { timeout: 300_000 }, async (t) => {
  const build = await runDockerfile({ file: join(ROOT, 'Dockerfile'), context: ROOT, root: join(BUILDS, 'navigator'), cache })
  timings(t, build)
  t.same(build.skipped, [], 'every step ran')
  t.equal(build.final.base, 'scratch')
  t.same(tree(build.final.dir), [
    'usr/local/bin/navigator -> ../lib/navigator/navigator.mjs',
    'usr/local/bin/node',
    'usr/local/lib/navigator/navigator.mjs',
    'usr/local/lib/navigator/navigator.mjs.LEGAL.txt'
  ], 'Node, the bundle with its licence notices, and the command')

  // Nothing but the image's own /usr/local/bin on PATH: the bundle's #!/usr/bin/env node finds the image's Node.
  const bin = join(build.final.dir, 'usr/local/bin')
  const env = { PATH: bin, LOG_LEVEL: 'info' }
  const version = spawnSync(join(bin, 'navigator'), ['--version'], { env, encoding: 'utf8' })
  t.equal(version.stdout.trim(), VERSION, `navigator --version ${version.stderr}`)

  const site = temp(t, 'navigator-image-site-')
  const port = await freePort()
  writeFileSync(join(site, 'config.yml'), `server:\n  listen: "127.0.0.1:${port}"\n  static:\n    public_dir: public\n`)
  mkdirSync(join(site, 'public'))
  writeFileSync(join(site, 'public', 'hello.txt'), 'hello from the image\n')
  const child = spawn(join(bin, 'navigator'), ['config.yml'], { cwd: site, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', resolve) })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('"msg":"listening"')) resolve()
    })
    void exited.then((code) => { reject(new Error(`exited with ${String(code)}: ${output}`)) })
  })
  t.equal((await http(`http://127.0.0.1:${port}`, '/hello.txt')).text, 'hello from the image\n', 'a static file')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'stopped cleanly on SIGTERM')
})

/** `[build] dockerfile` of the Rails example's fly.toml; flyctl resolves it against the folder of fly.toml. */
function flyDockerfile (): string {
  const toml = readFileSync(join(RAILS, 'fly.toml'), 'utf8')
  const section = /^\[build\]\s*\n((?:[ \t]*[^[\s].*\n)*)/m.exec(toml)
  const value = /^\s*dockerfile\s*=\s*"([^"]+)"/m.exec(section?.[1] ?? '')
  if (value === null) throw new Error('fly.toml has no [build] dockerfile')
  return join(RAILS, value[1])
}

// From the build context fly deploy uses (the repository root) and with the Dockerfile fly.toml names. The final
// stage's steps run as written but for the two that provision Debian: apt-get, skipped only when this host has the
// packages (scripts/system-deps.sh installs them), and the unprivileged user.
test('the Rails image builds Navigator from the repository and runs it as its CMD', { timeout: 300_000 }, async (t) => {
  const file = flyDockerfile()
  t.equal(file, join(RAILS, 'Dockerfile'), 'fly.toml names the example\'s Dockerfile')
  const build = await runDockerfile({ file, context: ROOT, root: join(BUILDS, 'rails'), cache })
  timings(t, build)
  for (const { line, step, reason } of build.skipped) t.comment(`skipped line ${line} (${step.split(' ').slice(0, 2).join(' ')} ...): ${reason}`)
  t.same(build.skipped.map(({ step }) => step.split(' ').slice(0, 2).join(' ')), ['RUN apt-get', 'RUN useradd', 'USER rails'],
    'only the steps that provision Debian are skipped')
  t.match(build.skipped[0].reason, /^the host already has the Debian packages it installs/)
  t.equal(build.ignoreFile, join(ROOT, '.dockerignore'), "the repository root's .dockerignore applies")

  const image = build.final
  t.equal(image.workdir, '/app')
  t.same(image.cmd, ['navigator', 'config/navigator.yml'])
  t.same(image.expose, ['3000'])
  const app = join(image.dir, 'app')
  t.ok(existsSync(join(app, 'Gemfile.lock')), 'bundle install --local resolved the Gemfile in the image')
  t.notOk(existsSync(join(app, 'test')), 'the tests stay out of the image')

  // The CMD's command is the image's own, a symlink to the bundle, run by the image's Node (first on PATH).
  const command = resolveCommand(image, image.cmd?.[0] ?? '')
  t.same(command, { path: join(image.dir, 'usr/local/bin/navigator'), inStage: true }, 'navigator resolves in the image')
  t.equal(realpathSync(command?.path ?? ''), join(realpathSync(image.dir), 'usr/local/lib/navigator/navigator.mjs'))
  t.ok(existsSync(join(image.dir, 'usr/local/bin/node')), "the image's Node")

  const env = stageEnv(image, { STICKY_SECRET: 'x'.repeat(32) })
  t.equal(env.RAILS_ENV, 'production', "the image's ENV")
  const check = spawnSync(command?.path ?? '', ['--check', ...(image.cmd ?? []).slice(1)], { cwd: app, env, encoding: 'utf8' })
  t.equal(check.status, 0, `navigator --check config/navigator.yml: ${check.stderr}`)
  t.match(check.stdout, 'config/navigator.yml: ok')

  // The CMD itself, in the image's root. Its ports are the host's here, shared with whatever else runs: the copy of
  // the configuration in the temporary root listens on free ports instead of 3000 and the cable server's 4001, and
  // keeps the tenants' databases out of the host's /data. Nothing else changes.
  const config = join(app, 'config/navigator.yml')
  const port = await freePort()
  const cablePort = await freePort()
  const data = temp(t, 'rails-image-data-')
  writeFileSync(config, readFileSync(config, 'utf8')
    .replace(/^ {2}listen: 3000\b/m, `  listen: ${port}`)
    .replaceAll('4001', String(cablePort))
    .replaceAll('sqlite3:/data/', `sqlite3:${data}/`))
  const child = spawn(command?.path ?? '', (image.cmd ?? []).slice(1), {
    cwd: app, env: { ...env, SECRET_KEY_BASE: 'k'.repeat(64) }, stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', resolve) })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('"msg":"listening"')) resolve()
    })
    void exited.then((code) => { reject(new Error(`the CMD exited with ${String(code)}: ${output}`)) })
  })
  const address = `http://127.0.0.1:${port}`
  const health = await http(address, '/up')
  t.equal(health.status, 200, 'the health check fly.toml names, answered by Navigator')
  const robots = await http(address, '/robots.txt')
  t.equal(robots.status, 200)
  t.equal(robots.text, readFileSync(join(RAILS, 'public/robots.txt'), 'utf8'), "a static file from the app's public folder")
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'stopped cleanly on SIGTERM')
  t.ok(await waitFor(() => processesIn(app).length === 0, 30_000), 'with its children (the cable server)')
})
