#!/usr/bin/env node
// Runs a Dockerfile's steps without a container engine, so that a test can prove the repository's Dockerfiles build.
// Each stage is a temporary folder standing for the image's root; the steps run in the order Docker runs them, the
// RUN lines unchanged, with `sh -c` in <stage><WORKDIR> and <stage>/usr/local/bin first in PATH. It understands the
// subset of the Dockerfile language this repository uses and stops on anything else, rather than guess:
//
// - FROM image [AS name]: `scratch` is an empty folder; `node:<major>-...` gets this Node binary (which must be that
//   major version) at /usr/local/bin/node and npm beside it, as in the official image; `debian`, `ubuntu` and `ruby`
//   images are an empty folder too, the host standing for their operating system (its /usr/bin, /bin and packages);
//   the name of an earlier stage copies that stage.
// - ARG, ENV, WORKDIR, EXPOSE and CMD as Docker does (CMD and EXPOSE are recorded for the caller).
// - COPY [--from=stage] src... dest: from the build context, honouring the ignore file Docker would use
//   (<Dockerfile>.dockerignore, else <context>/.dockerignore), or from an earlier stage. Symlinks inside a copied
//   folder stay symlinks; a source that is itself a symlink is followed, as Docker's COPY does.
// - RUN: a command that names an absolute path is refused, since it would be the host's path, not the stage's; keep
//   RUN lines relative to WORKDIR. Two kinds of RUN provision the image's operating system and are skipped, with the
//   reason, only when that is safe: `apt-get install` when the host already has every package (`dpkg -s`; otherwise
//   the run fails and names them), and user accounts and ownership (useradd, chown ...), since every step here runs
//   as the invoking user, who owns the whole stage. A RUN that mixes those with other commands is refused: split it.
// - USER is recorded and skipped for the same reason; --chown on COPY likewise.
//
// A caller may keep a cache of whole stages across builds, as Docker's layer cache does: a stage with the same base,
// steps and copied files (by name, mode, size and modification time) as one built before reuses its folder.
//
// The steps see only the image's environment (ARG, ENV, PATH) plus HOME and a few host settings the network needs
// (proxies, CA certificates), so npm's cache and pnpm's store are the host's and an install is fast after the first.
//
// Usage: node scripts/dockerfile-steps.mjs [--file Dockerfile] [--context .] [--root DIR] [--build-arg NAME=VALUE]...
// It prints each step, the skipped ones with their reason, and the final stage's folder and CMD; the folders stay.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync, constants, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync,
  readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, isAbsolute, join, posix, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

/** Host variables a step may need to reach the network and reuse the caches; nothing else of the host's leaks in. */
const PASSED_THROUGH = [
  'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TMPDIR',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy',
  'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
  'XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_STATE_HOME'
]

/** The operating system's folders in an image's default PATH, which the host provides for every stage. */
const OS_PATH = ['/usr/sbin', '/usr/bin', '/sbin', '/bin']

// ---------------------------------------------------------------------------------------------------------------
// Parsing

/**
 * The instructions of a Dockerfile: `{ line, keyword, rest }`, continuation lines joined as Docker joins them (the
 * backslash and newline removed), comment lines (and so parser directives) dropped.
 */
export function parseDockerfile (text) {
  const instructions = []
  let pending = null
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim()
    if (trimmed.startsWith('#')) return
    if (pending === null && trimmed === '') return
    const continues = /\\\s*$/.test(raw)
    const body = continues ? raw.replace(/\\\s*$/, '') : raw
    if (pending === null) pending = { line: index + 1, text: body.trimStart() }
    else pending.text += body
    if (continues) return
    const match = /^(\S+)\s*([\s\S]*)$/.exec(pending.text.trim())
    instructions.push({ line: pending.line, keyword: match[1].toUpperCase(), rest: match[2] })
    pending = null
  })
  if (pending !== null) throw new Error(`line ${pending.line}: the instruction ends with a line continuation`)
  return instructions
}

/** `["a", "b"]` (the exec form) as an array, or null for the shell form. */
function execForm (rest) {
  if (!rest.trim().startsWith('[')) return null
  try {
    const value = JSON.parse(rest)
    if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value
  } catch {}
  return null
}

/** Words split on blanks, with '…' and "…" quoting (enough for ENV, ARG, COPY and for reading RUN commands). */
function words (text) {
  const result = []
  let current = null
  let quote = null
  for (let i = 0; i < text.length; i++) {
    const char = text[i]
    if (quote !== null) {
      if (char === quote) quote = null
      else if (char === '\\' && quote === '"' && i + 1 < text.length) current += text[++i]
      else current += char
    } else if (char === '"' || char === "'") {
      quote = char
      current ??= ''
    } else if (/\s/.test(char)) {
      if (current !== null) result.push(current)
      current = null
    } else if (char === '\\' && i + 1 < text.length) {
      current = (current ?? '') + text[++i]
    } else {
      current = (current ?? '') + char
    }
  }
  if (quote !== null) throw new Error(`unterminated quote in: ${text}`)
  if (current !== null) result.push(current)
  return result
}

/** Docker's variable substitution outside RUN: $NAME, ${NAME}, ${NAME:-default}, ${NAME:+alternative}. */
function substitute (text, vars) {
  return text.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, braced, operator, word, bare) => {
      if (match === '\\$') return '$'
      const value = vars[braced ?? bare]
      if (operator === '-') return value === undefined || value === '' ? word : value
      if (operator === '+') return value === undefined || value === '' ? '' : word
      return value ?? ''
    })
}

/** Leading `--name=value` flags of COPY (and FROM), and the words after them. */
function flags (rest) {
  const list = words(rest)
  const options = {}
  while (list.length > 0 && list[0].startsWith('--')) {
    const [name, ...value] = list.shift().slice(2).split('=')
    options[name] = value.join('=')
  }
  return { options, list }
}

// ---------------------------------------------------------------------------------------------------------------
// .dockerignore

/** A .dockerignore pattern as a regular expression over slash-separated paths relative to the context. */
function patternRegExp (pattern) {
  let source = ''
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]
    if (char === '*' && pattern[i + 1] === '*') {
      i++
      if (pattern[i + 1] === '/') {
        i++
        source += '(?:.*/)?'
      } else {
        source += '.*'
      }
    } else if (char === '*') {
      source += '[^/]*'
    } else if (char === '?') {
      source += '[^/]'
    } else if (char === '[' && pattern.indexOf(']', i) !== -1) {
      const end = pattern.indexOf(']', i)
      source += pattern.slice(i, end + 1).replace('[!', '[^')
      i = end
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&')
    }
  }
  return new RegExp(`^${source}$`)
}

/**
 * Docker's rules: patterns relative to the context root (a leading slash means the same), `!` re-includes, the last
 * matching pattern decides, and a pattern that matches a folder matches everything under it.
 * Returns `(relativePath) => excluded` and `(relativeDir) => worth entering` (an excluded folder is entered only when
 * a `!` pattern names something inside it).
 */
export function dockerignore (text) {
  const rules = text.split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const include = line.startsWith('!')
      const pattern = posix.normalize((include ? line.slice(1) : line).trim()).replace(/^\/+/, '').replace(/\/+$/, '')
      return { include, pattern, regexp: patternRegExp(pattern) }
    })
  const matches = (regexp, path) => {
    const parts = path.split('/')
    for (let i = 1; i <= parts.length; i++) if (regexp.test(parts.slice(0, i).join('/'))) return true
    return false
  }
  const excluded = (path) => {
    let result = false
    for (const rule of rules) if (matches(rule.regexp, path)) result = !rule.include
    return result
  }
  const enter = (dir) => !excluded(dir) || rules.some((rule) => rule.include && rule.pattern.startsWith(`${dir}/`))
  return { excluded, enter }
}

// ---------------------------------------------------------------------------------------------------------------
// Files

/** A path inside a stage: the image's absolute path `path` under the stage's folder. */
function inStage (stage, path) {
  return join(stage.dir, posix.resolve('/', path))
}

/** Follows a symlink that is itself a COPY source, staying inside `rootDir` for absolute targets. */
function followSource (rootDir, path) {
  for (let hops = 0; hops < 40; hops++) {
    let stats
    try {
      stats = lstatSync(path)
    } catch {
      return null
    }
    if (!stats.isSymbolicLink()) return path
    const target = readlinkSync(path)
    path = isAbsolute(target) ? join(rootDir, target) : resolve(dirname(path), target)
  }
  throw new Error(`${path}: too many levels of symbolic links`)
}

/** Copies a file, symlink or folder tree, keeping modes and symlinks; `skip(path)` leaves entries out. */
function copyTree (from, to, skip = () => false) {
  const stats = lstatSync(from)
  if (stats.isSymbolicLink()) {
    rmSync(to, { force: true })
    symlinkSync(readlinkSync(from), to)
  } else if (stats.isDirectory()) {
    mkdirSync(to, { recursive: true })
    chmodSync(to, stats.mode & 0o7777)
    for (const name of readdirSync(from)) {
      const child = join(from, name)
      if (!skip(child)) copyTree(child, join(to, name), skip)
    }
  } else {
    rmSync(to, { force: true })
    copyFileSync(from, to, constants.COPYFILE_FICLONE)
    chmodSync(to, stats.mode & 0o7777)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Stages

function newStage (root, index, name, base) {
  const dir = join(root, `${index}-${name ?? 'stage'}`)
  mkdirSync(dir, { recursive: true })
  return { index, name, base, dir, workdir: '/', env: {}, args: {}, user: null, cmd: null, expose: [] }
}

/** npm as the official Node image has it: the package in /usr/local/lib/node_modules, npm and npx in /usr/local/bin. */
function addNpm (stage) {
  const npm = resolve(dirname(realpathSync(process.execPath)), '../lib/node_modules/npm')
  if (!existsSync(join(npm, 'bin/npm-cli.js'))) return
  mkdirSync(inStage(stage, '/usr/local/lib/node_modules'), { recursive: true })
  symlinkSync(npm, inStage(stage, '/usr/local/lib/node_modules/npm'))
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', inStage(stage, '/usr/local/bin/npm'))
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', inStage(stage, '/usr/local/bin/npx'))
}

/** FROM: a new stage with its base image's files, or an earlier stage's copy. */
function fromImage (root, index, image, name, stages) {
  const earlier = stages.find((stage) => stage.name === image)
  if (earlier !== undefined) {
    const stage = { ...newStage(root, index, name, image), workdir: earlier.workdir, env: { ...earlier.env }, cmd: earlier.cmd }
    cpSync(earlier.dir, stage.dir, { recursive: true, verbatimSymlinks: true })
    return stage
  }
  if (image === 'scratch') return newStage(root, index, name, image)
  const node = /^(?:docker\.io\/)?(?:library\/)?node:(\d+)(?:[.-]|$)/.exec(image)
  if (node !== null) {
    const host = process.versions.node.split('.')[0]
    if (node[1] !== host) throw new Error(`${image} needs Node ${node[1]} on the host to stand for it; this is Node ${process.versions.node}`)
    const stage = newStage(root, index, name, image)
    mkdirSync(inStage(stage, '/usr/local/bin'), { recursive: true })
    copyFileSync(realpathSync(process.execPath), inStage(stage, '/usr/local/bin/node'), constants.COPYFILE_FICLONE)
    chmodSync(inStage(stage, '/usr/local/bin/node'), 0o755)
    addNpm(stage)
    stage.cmd = ['node']
    return stage
  }
  if (/^(?:docker\.io\/)?(?:library\/)?(debian|ubuntu|ruby):/.test(image)) return newStage(root, index, name, image)
  throw new Error(`FROM ${image}: no stand-in for this base image (scratch, node, debian, ubuntu, ruby, or an earlier stage)`)
}

/** The environment a step sees: the image's PATH with the stage's /usr/local first, its ARG and ENV, a few host settings. */
export function stageEnv (stage, extra = {}) {
  const env = {}
  for (const name of PASSED_THROUGH) if (process.env[name] !== undefined) env[name] = process.env[name]
  env.PATH = [inStage(stage, '/usr/local/sbin'), inStage(stage, '/usr/local/bin'), ...OS_PATH].join(':')
  return { ...env, ...stage.args, ...stage.env, ...extra }
}

/** Where a command of the stage's CMD resolves: in the stage first, then in the host's OS folders. */
export function resolveCommand (stage, command) {
  if (command.includes('/')) {
    const path = command.startsWith('/') ? inStage(stage, command) : join(inStage(stage, stage.workdir), command)
    return existsSync(path) ? { path, inStage: true } : null
  }
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', ...OS_PATH]) {
    const path = inStage(stage, join(dir, command))
    if (existsSync(path)) return { path, inStage: true }
  }
  for (const dir of OS_PATH) {
    const path = join(dir, command)
    if (existsSync(path)) return { path, inStage: false }
  }
  return null
}

// ---------------------------------------------------------------------------------------------------------------
// RUN

/** The simple commands of a shell line, as word lists (split on &&, ||, ; and |; enough to read what a RUN does). */
function commands (line) {
  return line.split(/&&|\|\||;|\|/).map(words).filter((list) => list.length > 0)
}

const USER_COMMANDS = new Set(['useradd', 'groupadd', 'adduser', 'addgroup', 'usermod', 'chown', 'chgrp'])

/** What an operating-system command is for, or null when it is an ordinary step. */
function osKind ([program, ...args]) {
  if (program === 'apt-get' || program === 'apt') return 'packages'
  const aptLists = (arg) => arg.startsWith('/var/lib/apt/lists')
  if (program === 'rm' && args.some(aptLists) && args.every((arg) => arg.startsWith('-') || aptLists(arg))) return 'packages'
  if (USER_COMMANDS.has(program)) return 'users'
  if (program === 'mkdir' && args.every((arg) => arg.startsWith('-') || arg.startsWith('/'))) return 'folders'
  return null
}

/** The packages `apt-get install` would add and are missing on this host. */
function missingPackages (list) {
  const packages = []
  for (const words of list) {
    const at = words.indexOf('install')
    if ((words[0] === 'apt-get' || words[0] === 'apt') && at !== -1) {
      packages.push(...words.slice(at + 1).filter((word) => !word.startsWith('-')))
    }
  }
  const missing = packages.filter((name) => {
    const status = spawnSync('dpkg', ['-s', name], { encoding: 'utf8' })
    return status.status !== 0 || !/^Status: install ok installed$/m.test(status.stdout)
  })
  return { packages, missing }
}

/**
 * Why a RUN that provisions the operating system is skipped, or null for an ordinary RUN. Throws when it cannot be
 * skipped safely: packages the host lacks, or OS provisioning mixed with other commands.
 */
function osStep (line, list) {
  const kinds = list.map(osKind)
  // An absolute mkdir alone is no provisioning: checkRelative refuses it like any other absolute path.
  if (!kinds.includes('packages') && !kinds.includes('users')) return null
  if (kinds.includes(null)) {
    const others = list.filter((_, i) => kinds[i] === null).map((words) => words.join(' ')).join('; ')
    throw new Error(`line ${line}: this RUN mixes provisioning of the operating system with other commands (${others}): ` +
      'split it, so that the emulation can run the rest')
  }
  const reasons = []
  if (kinds.includes('packages')) {
    const { packages, missing } = missingPackages(list)
    if (missing.length > 0) {
      throw new Error(`line ${line}: apt-get would install ${missing.join(', ')}, which this host lacks ` +
        `(apt-get install -y ${missing.join(' ')}; scripts/system-deps.sh installs the ones the tests need)`)
    }
    reasons.push(`the host already has the Debian packages it installs (dpkg -s ${packages.join(' ')})`)
  }
  if (kinds.includes('users')) {
    reasons.push('it creates user accounts or changes ownership, and here every step runs as the invoking user, who owns the whole stage')
  }
  if (kinds.includes('folders')) {
    const folders = list.filter((_, i) => kinds[i] === 'folders').flatMap((words) => words.slice(1).filter((arg) => !arg.startsWith('-')))
    reasons.push(`its absolute folders (${folders.join(' ')}) belong to the image's operating system, not to a step`)
  }
  return reasons.join('; ')
}

/** Refuses a RUN that names an absolute path: on the host it would be the host's file, not the stage's. */
function checkRelative (line, list) {
  for (const words of list) {
    for (const word of words) {
      const path = word.replace(/^[0-9]*[<>]+&?/, '').replace(/^--?[A-Za-z-]+=/, '')
      if (path.startsWith('/') && path !== '/dev/null') {
        throw new Error(`line ${line}: RUN names the absolute path ${path}, which would be the host's; write it relative to WORKDIR`)
      }
    }
  }
}

/** Runs one shell line in the stage; resolves with its output, rejects with the output's tail. */
function runShell (stage, line, script, log) {
  const cwd = inStage(stage, stage.workdir)
  mkdirSync(cwd, { recursive: true })
  return new Promise((_resolve, reject) => {
    const child = spawn('sh', ['-c', script], { cwd, env: stageEnv(stage), stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const collect = (chunk) => {
      output += chunk.toString()
      log(chunk.toString().replace(/\n$/, ''))
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      if (code === 0) _resolve(output)
      else reject(new Error(`line ${line}: RUN ${script.trim()}\nexited with ${code ?? signal}:\n${output.split('\n').slice(-60).join('\n')}`))
    })
  })
}

// ---------------------------------------------------------------------------------------------------------------
// COPY

/** The ignore rules Docker would apply to this Dockerfile's context. */
function ignoreRules (dockerfile, context) {
  for (const file of [`${dockerfile}.dockerignore`, join(context, '.dockerignore')]) {
    if (existsSync(file)) return { file, ...dockerignore(readFileSync(file, 'utf8')) }
  }
  return { file: null, ...dockerignore('') }
}

/** Whether the ignore file leaves out a path of the context (a folder: unless a `!` pattern reaches inside it). */
function contextSkip (build) {
  return (path) => {
    const relative = posix.normalize(path.slice(build.context.length + 1).split('\\').join('/'))
    return lstatSync(path).isDirectory() ? !build.ignore.enter(relative) : build.ignore.excluded(relative)
  }
}

function copy (stage, line, rest, build) {
  const { options, list } = flags(substitute(rest, { ...stage.args, ...stage.env }))
  for (const name of Object.keys(options)) {
    if (!['from', 'chown', 'link'].includes(name)) throw new Error(`line ${line}: COPY --${name} is not supported by this emulation`)
  }
  if (options.chown !== undefined) {
    build.skipped.push({ line, step: `COPY --chown=${options.chown}`, reason: 'ownership: every step runs as the invoking user' })
  }
  if (list.length < 2) throw new Error(`line ${line}: COPY needs a source and a destination`)
  const destination = list.pop()
  const target = inStage(stage, posix.resolve(stage.workdir, destination))
  const intoFolder = destination.endsWith('/') || list.length > 1
  let source
  if (options.from !== undefined) {
    const from = build.stages.find((earlier) => earlier.name === options.from || String(earlier.index) === options.from)
    if (from === undefined) throw new Error(`line ${line}: COPY --from=${options.from}: no such stage (images are not pulled by this emulation)`)
    source = { root: from.dir, path: (path) => inStage(from, path), skip: () => false }
  } else {
    source = { root: build.context, path: (path) => join(build.context, posix.resolve('/', path)), skip: contextSkip(build) }
  }
  for (const name of list) {
    if (/[*?[]/.test(name)) throw new Error(`line ${line}: COPY ${name}: wildcards are not supported by this emulation`)
    const from = followSource(source.root, source.path(name))
    const ignored = options.from === undefined && from !== null && from !== build.context &&
      build.ignore.excluded(posix.normalize(from.slice(build.context.length + 1)))
    if (from === null || ignored) {
      const where = options.from === undefined ? 'in the build context (or excluded by its ignore file)' : `in stage ${options.from}`
      throw new Error(`line ${line}: COPY ${name}: not found ${where}`)
    }
    if (statSync(from).isDirectory()) {
      copyFolderContents(from, target, source.skip)
    } else {
      const to = intoFolder ? join(target, basename(from)) : target
      mkdirSync(dirname(to), { recursive: true })
      copyTree(from, to)
    }
  }
}

/** A folder source: its contents go into the destination, as with Docker. */
function copyFolderContents (from, to, skip) {
  mkdirSync(to, { recursive: true })
  for (const name of readdirSync(from)) {
    const child = join(from, name)
    if (!skip(child)) copyTree(child, join(to, name), skip)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The build

/** The instructions grouped by stage: the ARGs before the first FROM, then each FROM with the steps under it. */
function stagesOf (instructions) {
  const preamble = []
  const stages = []
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      stages.push({ from: instruction, steps: [] })
    } else if (stages.length > 0) {
      stages.at(-1).steps.push(instruction)
    } else if (instruction.keyword === 'ARG') {
      preamble.push(instruction)
    } else {
      throw new Error(`line ${instruction.line}: ${instruction.keyword} before the first FROM`)
    }
  }
  return { preamble, stages }
}

/**
 * Adds what COPY would take from the context at `path` to `hash`: names, modes, sizes, modification times, symlink
 * targets. A source that is a symlink is followed, as COPY does; symlinks inside a folder are taken as they are.
 */
function digestContext (build, path, hash, source = true) {
  const followed = source ? followSource(build.context, path) : path
  if (followed === null) {
    hash.update(`missing ${path}\n`)
    return
  }
  const stats = lstatSync(followed)
  if (stats.isSymbolicLink()) {
    hash.update(`${followed} -> ${readlinkSync(followed)}\n`)
  } else if (!stats.isDirectory()) {
    hash.update(`${followed} ${stats.mode} ${stats.size} ${stats.mtimeMs}\n`)
  } else {
    // A folder by its name and mode only: its own time changes with entries the ignore file leaves out.
    hash.update(`${followed} ${stats.mode}\n`)
    const skip = contextSkip(build)
    for (const name of readdirSync(followed).sort()) {
      const child = join(followed, name)
      if (!skip(child)) digestContext(build, child, hash, false)
    }
  }
}

/**
 * A stage's cache key, after Docker's layer cache: the base image, the build arguments, every instruction as written,
 * what COPY takes from the context (by name, mode, size and modification time, where Docker would checksum the
 * contents) and the keys of the stages COPY --from reads. Null, and no caching, when a COPY source is a variable.
 */
function stageKey (build, image, args, steps) {
  const hash = createHash('sha256')
  hash.update(JSON.stringify({ image, args, steps: steps.map(({ keyword, rest }) => [keyword, rest]) }))
  const base = build.stages.find((earlier) => earlier.name === image)
  if (base !== undefined) {
    if (base.key == null) return null
    hash.update(base.key)
  }
  for (const { keyword, rest } of steps) {
    if (keyword !== 'COPY') continue
    if (rest.includes('$')) return null
    const { options, list } = flags(rest)
    list.pop()
    if (options.from === undefined) {
      for (const name of list) digestContext(build, join(build.context, posix.resolve('/', name)), hash)
    } else {
      const from = build.stages.find((earlier) => earlier.name === options.from || String(earlier.index) === options.from)
      if (from?.key == null) return null
      hash.update(from.key)
    }
  }
  return hash.digest('hex')
}

/** Runs one instruction of a stage. */
async function step (build, stage, { line, keyword, rest }, log) {
  switch (keyword) {
    case 'ARG': {
      const [name, ...value] = words(rest).join(' ').split('=')
      const fallback = value.length > 0 ? substitute(value.join('='), { ...stage.args, ...stage.env }) : build.globalArgs[name]
      const resolved = build.buildArgs[name] ?? fallback
      if (resolved !== undefined) stage.args[name] = resolved
      break
    }
    case 'ENV': {
      const list = words(rest)
      const pairs = list.length === 2 && !list[0].includes('=') ? [list] : list.map((pair) => pair.split(/=(.*)/s, 2))
      for (const [name, value] of pairs) stage.env[name] = substitute(value ?? '', { ...stage.args, ...stage.env })
      break
    }
    case 'WORKDIR':
      stage.workdir = posix.resolve(stage.workdir, substitute(rest.trim(), { ...stage.args, ...stage.env }))
      mkdirSync(inStage(stage, stage.workdir), { recursive: true })
      break
    case 'COPY':
      copy(stage, line, rest, build)
      break
    case 'RUN': {
      if (execForm(rest) !== null) throw new Error(`line ${line}: RUN in exec form is not supported by this emulation`)
      const list = commands(rest)
      const reason = osStep(line, list)
      if (reason !== null) {
        build.skipped.push({ line, step: `RUN ${rest.trim()}`, reason })
        log(`  skipped: ${reason}`)
        break
      }
      checkRelative(line, list)
      await runShell(stage, line, rest, log)
      break
    }
    case 'USER':
      stage.user = rest.trim()
      build.skipped.push({ line, step: `USER ${stage.user}`, reason: 'every step runs as the invoking user' })
      break
    case 'EXPOSE':
      stage.expose.push(...words(rest))
      break
    case 'CMD':
      stage.cmd = execForm(rest) ?? ['/bin/sh', '-c', rest.trim()]
      break
    case 'LABEL':
      break
    default:
      throw new Error(`line ${line}: ${keyword} is not supported by this emulation`)
  }
}

/**
 * Runs every step of `file` with `context` as the build context, each stage a folder under `root`.
 * Returns `{ stages, final, skipped, timings, ignoreFile }`; `final` is the last stage (the image), with its `dir`,
 * `workdir`, `env`, `cmd` and `expose`; `timings` has each step's line, keyword and duration in ms (`cached: true` for
 * a stage taken from the cache). `log` receives each step and its output.
 * `cache`, a Map kept by the caller across builds, plays Docker's layer cache for whole stages: a stage with the
 * same key as one built before (see stageKey) reuses that stage's folder instead of running again. Cached folders are
 * only read (COPY --from, FROM <stage> copies), so the caller keeps them until its last build is done.
 */
export async function runDockerfile ({ file, context, root, buildArgs = {}, cache = null, log = () => {} }) {
  file = resolve(file)
  context = resolve(context)
  mkdirSync(root, { recursive: true })
  const build = { context, buildArgs, globalArgs: {}, stages: [], skipped: [], timings: [], ignore: ignoreRules(file, context) }
  const { preamble, stages } = stagesOf(parseDockerfile(readFileSync(file, 'utf8')))
  for (const { rest } of preamble) {
    const [name, ...value] = words(rest).join(' ').split('=')
    build.globalArgs[name] = buildArgs[name] ?? (value.length > 0 ? substitute(value.join('='), build.globalArgs) : undefined)
  }
  if (stages.length === 0) throw new Error(`${file}: no FROM`)
  for (const { from, steps } of stages) {
    log(`#${from.line} FROM ${from.rest}`)
    const started = Date.now()
    const { list } = flags(substitute(from.rest, build.globalArgs))
    const name = list.length === 3 && list[1].toUpperCase() === 'AS' ? list[2] : null
    const key = cache === null ? null : stageKey(build, list[0], { ...build.globalArgs, ...buildArgs }, steps)
    const cached = key === null ? undefined : cache.get(key)
    if (cached !== undefined) {
      build.stages.push({ ...cached.stage, index: build.stages.length, name })
      for (const { index, reason } of cached.skipped) {
        build.skipped.push({ line: steps[index].line, step: `${steps[index].keyword} ${steps[index].rest.trim()}`, reason })
      }
      build.timings.push({ line: from.line, keyword: 'FROM', ms: Date.now() - started, cached: true })
      log('  cached: the same steps on the same files as a stage built before')
      continue
    }
    const stage = fromImage(root, build.stages.length, list[0], name, build.stages)
    stage.key = key
    build.stages.push(stage)
    build.timings.push({ line: from.line, keyword: 'FROM', ms: Date.now() - started })
    const skippedBefore = build.skipped.length
    for (const instruction of steps) {
      log(`#${instruction.line} ${instruction.keyword} ${instruction.rest.split('\n')[0]}`)
      const stepStarted = Date.now()
      await step(build, stage, instruction, log)
      build.timings.push({ line: instruction.line, keyword: instruction.keyword, ms: Date.now() - stepStarted })
    }
    if (key !== null) {
      // Skipped steps are remembered by their position in the stage, since another Dockerfile has other line numbers.
      const skipped = build.skipped.slice(skippedBefore)
        .map(({ line, reason }) => ({ index: steps.findIndex((instruction) => instruction.line === line), reason }))
      cache.set(key, { stage, skipped })
    }
  }
  const final = build.stages.at(-1)
  return { stages: build.stages, final, skipped: build.skipped, timings: build.timings, ignoreFile: build.ignore.file }
}

// ---------------------------------------------------------------------------------------------------------------
// Command line

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      file: { type: 'string', default: 'Dockerfile' },
      context: { type: 'string', default: '.' },
      root: { type: 'string' },
      'build-arg': { type: 'string', multiple: true, default: [] }
    }
  })
  const buildArgs = Object.fromEntries(values['build-arg'].map((pair) => pair.split(/=(.*)/s, 2)))
  const root = values.root ?? mkdtempSync(join(tmpdir(), 'dockerfile-steps-'))
  const started = Date.now()
  try {
    const log = (text) => { process.stderr.write(`${text}\n`) }
    const result = await runDockerfile({ file: values.file, context: values.context, root, buildArgs, log })
    for (const { line, step, reason } of result.skipped) process.stdout.write(`skipped line ${line}: ${step.split('\n')[0]}\n  because ${reason}\n`)
    process.stdout.write(`final stage: ${result.final.dir} (WORKDIR ${result.final.workdir})\n`)
    process.stdout.write(`CMD ${JSON.stringify(result.final.cmd)}\n`)
    process.stdout.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  } catch (error) {
    process.stderr.write(`${error.message}\n(stages kept in ${root})\n`)
    process.exitCode = 1
  }
}
