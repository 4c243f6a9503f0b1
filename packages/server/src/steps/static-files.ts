import { lstatSync, realpathSync, statSync } from 'node:fs'
import type { Stats } from 'node:fs'
import { realpath } from 'node:fs/promises'
import { sep } from 'node:path'
import type { CacheControlRule, NavigatorConfig, StaticRules } from '@navigator/config'
import { ANSWERED, isUpgrade, NEEDS_FASTIFY, NEXT, type RequestContext, type Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'
import { answerRedirect, queryOf } from './redirects.js'
import { tenantRouter } from './tenants.js'

/** Served for a request on a folder of public_dir, when present. */
export const INDEX_FILE = 'index.html'
/** A public_dir that does not exist is looked for again at most this often. */
export const MISSING_ROOT_RECHECK_MS = 1000
/**
 * A path found to be no static file is not looked up again for this long: the proxied paths of an app (every
 * page, every API call) cost a stat system call once a second each instead of once per request. A file added to
 * public_dir is served at most this long after it appears; one removed is noticed at once (hits are not cached).
 */
export const MISS_CACHE_TTL_MS = 1000
/** At most this many misses are remembered; beyond it the cache starts over (a flood of distinct paths). */
export const MISS_CACHE_MAX_ENTRIES = 10_000

/**
 * Resolves a forwarded URL path to a regular file under publicDir: null at
 * once when there is no such file (the common case for proxied requests),
 * else a promise of the file (its path relative to publicDir, "/css/app.css"),
 * or of null when a symbolic link leads outside publicDir.
 *
 * The path is percent-decoded exactly once; anything that could name a file
 * outside publicDir (a ".." segment, a backslash, a NUL byte, a malformed
 * escape) is not a static file, and the request goes on down the pipeline.
 * Folders are never listed: a folder answers with its index.html or not at all.
 *
 * The existence check is a synchronous stat that creates no error object for
 * a missing file: on the local disk public_dir lives on, that costs far less
 * than a round trip through libuv's thread pool on every proxied request.
 */
export type StaticFileFinder = (forwardedPath: string) => Promise<StaticFile | null> | null

export interface StaticFile {
  /** The file's path relative to publicDir ("/css/app.css"). */
  relative: string
  /**
   * False when a precompressed sibling (`.br`, `.gz`) leads outside publicDir: then only the file itself may be
   * sent, never a sibling @fastify/static would pick for the request's Accept-Encoding.
   */
  siblingsContained: boolean
  /** The path named a folder without its trailing slash, and the file is one in that folder (its index.html). */
  folderWithoutSlash: boolean
}

/** What decides which files of publicDir are static files, beyond their being inside it. */
export interface StaticLookupRules {
  /** Names starting with a dot are static files (`.well-known/` always is). */
  allowDotfiles: boolean
  /** Lower-case extensions without their dot; null: every extension. */
  allowedExtensions: readonly string[] | null
  /** Suffixes tried in order when the path is no file: ".html" is added to it, "index.html" looked for inside it. */
  tryFiles: readonly string[]
}

interface Located {
  relative: string
  folderWithoutSlash: boolean
}

/** The precompressed siblings @fastify/static looks for (`preCompressed: true`). */
export const PRECOMPRESSED_EXTENSIONS: readonly string[] = ['.br', '.gz']

/** The one folder of dot-named entries served whatever `allow_dotfiles` says (RFC 8615: ACME challenges, security.txt). */
export const WELL_KNOWN = '.well-known'

export function createStaticFileFinder (publicDir: string, allowDotfiles = false, rules: Partial<StaticLookupRules> = {}): StaticFileFinder {
  const lookup: StaticLookupRules = { allowedExtensions: null, tryFiles: [], ...rules, allowDotfiles }
  let root: string | null = null
  let rootCheckedAt = -Infinity
  let misses = new Set<string>()
  let missesSince = -Infinity

  return function findStaticFile (forwardedPath) {
    const now = Date.now()
    if (root === null) {
      if (now - rootCheckedAt < MISSING_ROOT_RECHECK_MS) return null
      rootCheckedAt = now
      root = resolveRoot(publicDir)
      if (root === null) return null
    }
    if (now - missesSince >= MISS_CACHE_TTL_MS || misses.size >= MISS_CACHE_MAX_ENTRIES) {
      misses = new Set()
      missesSince = now
    } else if (misses.has(forwardedPath)) {
      return null
    }
    const located = locate(publicDir, forwardedPath, lookup)
    if (located === null) {
      misses.add(forwardedPath)
      return null
    }
    return insideRoot(publicDir, root, located)
  }
}

function resolveRoot (publicDir: string): string | null {
  try {
    return realpathSync(publicDir)
  } catch {
    return null
  }
}

function statOf (path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false })
  } catch {
    // ENOTDIR ("/file.txt/more"), ENAMETOOLONG, EACCES: not a file we serve.
    return undefined
  }
}

/** The path's segments, decoded once; null when one could name a file outside publicDir or is a hidden one. */
function segmentsOf (forwardedPath: string, allowDotfiles: boolean): string[] | null {
  let decoded: string
  try {
    decoded = decodeURIComponent(forwardedPath)
  } catch {
    return null
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null

  const segments: string[] = []
  for (const segment of decoded.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') return null
    // `.env`, `.git/config`: secrets left in public_dir are not static files unless allowed.
    if (!allowDotfiles && segment.charCodeAt(0) === 46 /* . */ && segment !== WELL_KNOWN) return null
    segments.push(segment)
  }
  return segments
}

/**
 * The file a path names: itself, else the index.html of the folder it names, else the first of try_files that is a
 * file. Every candidate is built from the checked segments and a suffix that holds no slash, so it stays inside
 * publicDir as the path itself does (symbolic links are for insideRoot), and it must be a regular file with an allowed
 * extension.
 */
function locate (publicDir: string, forwardedPath: string, rules: StaticLookupRules): Located | null {
  const segments = segmentsOf(forwardedPath, rules.allowDotfiles)
  if (segments === null) return null
  const base = segments.length === 0 ? '' : '/' + segments.join('/')
  const endsInSlash = forwardedPath.charCodeAt(forwardedPath.length - 1) === 47 /* / */
  const stats = statOf(publicDir + (base === '' ? '/' : base))
  if (stats === undefined && rules.tryFiles.length === 0) return null
  if (stats?.isFile() === true && servable(base, rules)) return { relative: base, folderWithoutSlash: false }
  if (stats?.isDirectory() === true) {
    const index = base + '/' + INDEX_FILE
    if (isFile(publicDir + index) && servable(index, rules)) return { relative: index, folderWithoutSlash: !endsInSlash }
  }
  for (const suffix of rules.tryFiles) {
    const inFolder = suffix.charCodeAt(0) !== 46 /* . */
    // "/" + ".html" would be a dotfile, "/about/" + ".html" a name the client never asked for.
    if (!inFolder && (base === '' || endsInSlash)) continue
    const relative = inFolder ? base + '/' + suffix : base + suffix
    if (isFile(publicDir + relative) && servable(relative, rules)) return { relative, folderWithoutSlash: inFolder && !endsInSlash }
  }
  return null
}

function isFile (path: string): boolean {
  return statOf(path)?.isFile() === true
}

/** A file is served only with one of allowed_extensions, when they are given (the text after the last dot of its name). */
function servable (relative: string, rules: StaticLookupRules): boolean {
  const allowed = rules.allowedExtensions
  if (allowed === null) return true
  const dot = relative.lastIndexOf('.')
  if (dot <= relative.lastIndexOf('/')) return false
  return allowed.includes(relative.slice(dot + 1).toLowerCase())
}

/** A symbolic link inside public_dir must not lead outside of it: the file's, nor a precompressed sibling's. */
async function insideRoot (publicDir: string, root: string, { relative, folderWithoutSlash }: Located): Promise<StaticFile | null> {
  const contained = async (path: string): Promise<boolean> => {
    const target = await realpath(path).catch(() => null)
    return target !== null && target.startsWith(root + sep)
  }
  if (!await contained(publicDir + relative)) return null
  let siblingsContained = true
  for (const extension of PRECOMPRESSED_EXTENSIONS) {
    const sibling = publicDir + relative + extension
    // Most files have no sibling: a synchronous lstat (no error object when absent) skips the realpath.
    if (lstatSync(sibling, { throwIfNoEntry: false }) === undefined) continue
    if (!await contained(sibling)) siblingsContained = false
  }
  return { relative, siblingsContained, folderWithoutSlash }
}

/** The options @fastify/static sends a file with: its Cache-Control, by server.static.cache_control. */
type SendOptions = { maxAge: number, immutable: boolean } | undefined

interface CacheControlPlan {
  /** Path prefixes in the order given, each with its options. */
  overrides: ReadonlyArray<{ path: string, options: SendOptions }>
  /** For a path no override matches; undefined: @fastify/static's own (`public, max-age=0`). */
  fallback: SendOptions
}

/** Built once per configuration, so that a request only compares prefixes and passes a shared object. */
export function planCacheControl (cacheControl: StaticRules['cacheControl']): CacheControlPlan {
  const options = (rule: CacheControlRule | null): SendOptions => rule === null ? undefined : Object.freeze({ maxAge: rule.maxAgeMs, immutable: rule.immutable })
  return {
    overrides: cacheControl.overrides.map((override) => ({ path: override.path, options: options(override) })),
    fallback: options(cacheControl.default)
  }
}

function sendOptionsFor (plan: CacheControlPlan, path: string): SendOptions {
  for (const override of plan.overrides) {
    if (path.startsWith(override.path)) return override.options
  }
  return plan.fallback
}

/** Which folders a lookup reads: every one, only server.static.public_dir, or only the tenants' own. */
export type StaticFolders = 'all' | 'server' | 'tenants'

/** The tenants with a public_dir of their own. */
export function tenantsWithFolders (config: NavigatorConfig): NavigatorConfig['applications']['tenants'] {
  return config.applications.tenants.filter((tenant) => typeof tenant.publicDir === 'string')
}

/** A static file found, and the folder it is in. */
export interface FoundFile extends StaticFile {
  /** The folder it was found in: a tenant's public_dir or server.static.public_dir. */
  root: string
}

/** A forwarded URL path's static file, or null at once (the common case), or a promise (see StaticFileFinder). */
export type StaticLookup = (forwardedPath: string) => Promise<FoundFile | null> | null

/**
 * Where the static files of a configuration are: the public_dir of the tenant a path is routed to (the path looked up
 * with the tenant's prefix removed), then server.static.public_dir (the path looked up with server.root_path removed,
 * when it is below it). Every folder is read under the same rules (server.static). The static files step serves with
 * it, and bot detection asks it whether a bot's request is for a static file.
 */
export function createStaticLookup (config: NavigatorConfig, folders: StaticFolders = 'all'): StaticLookup {
  const { publicDir, allowDotfiles, staticRules: rules, rootPath } = config.server
  const inServerRoot = createStaticFileFinder(publicDir, allowDotfiles, rules)
  const belowRoot = rootPath === null ? null : rootPath + '/'
  const serverFile = folders === 'tenants'
    ? () => null
    : (path: string): Promise<FoundFile | null> | null => {
        const found = inServerRoot(belowRoot !== null && path.startsWith(belowRoot) ? path.slice(belowRoot.length - 1) : path)
        return found === null ? null : found.then((file) => file === null ? null : { ...file, root: publicDir })
      }
  const withFolders = folders === 'server' ? [] : tenantsWithFolders(config)
  if (withFolders.length === 0) return serverFile

  // Routed as the tenants step routes, over every tenant: a tenant without a folder of its own has none here.
  const route = tenantRouter(config.applications.tenants)
  const finders = new Map(withFolders.map((tenant) => [tenant, createStaticFileFinder(tenant.publicDir as string, allowDotfiles, rules)]))
  return function findStaticFile (path) {
    const tenant = route(path)
    const finder = tenant === null ? undefined : finders.get(tenant)
    if (tenant === null || finder === undefined) return serverFile(path)
    // The tenant's own path alone is its folder without the slash (redirected to it with normalize_trailing_slashes).
    const found = finder(tenant.path === '/' ? path : path.slice(tenant.path.length))
    if (found === null) return serverFile(path)
    const root = tenant.publicDir as string
    return found.then((file) => file === null ? serverFile(path) : { ...file, root })
  }
}

/**
 * Static files, for GET and HEAD on the forwarded path (an upgrade is never a file): a tenant's public_dir, then
 * `server.static.public_dir` (see createStaticLookup). With `auth` on, the tenants' folders are a step of their own
 * (`tenant-static-files`, `folders: 'tenants'`) after authentication: only server.static.public_dir is answered before
 * it, as in the Go Navigator. The file is sent by @fastify/static (ETag, Last-Modified,
 * Range, precompressed siblings, the Cache-Control of server.static.cache_control, matched on the URL path), so a raw
 * path hands the request to Fastify once a file is found. A folder asked for without its slash is redirected to it
 * with normalize_trailing_slashes, and server.root_path alone to itself with a slash.
 */
export function staticFiles ({ config }: StepOptions, folders: StaticFolders = 'all'): Step {
  const rules = config.server.staticRules
  const findStaticFile = createStaticLookup(config, folders)
  const cacheControl = planCacheControl(rules.cacheControl)
  const normalizeTrailingSlashes = rules.normalizeTrailingSlashes
  const rootPath = config.server.rootPath
  // Said once per file (a planted link is worth a warning, not one per request).
  const warned = new Set<string>()
  const send = (ctx: RequestContext, file: FoundFile): void => {
    // @fastify/static picks a sibling by Accept-Encoding alone: without it, only the file itself is sent.
    if (!file.siblingsContained) {
      delete ctx.req.headers['accept-encoding']
      const where = file.root + file.relative
      if (!warned.has(where) && warned.size < 1000) {
        warned.add(where)
        ctx.log.warn({ file: file.relative, folder: file.root }, 'a precompressed sibling leads outside public_dir: the file is sent uncompressed')
      }
    }
    (ctx.reply as NonNullable<RequestContext['reply']>).sendFile(file.relative, file.root, sendOptionsFor(cacheControl, ctx.forwardedPath))
  }
  return {
    name: folders === 'tenants' ? 'tenant-static-files' : 'static-files',
    run (ctx) {
      const method = ctx.req.method
      if ((method !== 'GET' && method !== 'HEAD') || isUpgrade(ctx.req)) return NEXT
      // The site's root without its slash: its relative links resolve inside it only with the slash.
      if (folders !== 'tenants' && ctx.forwardedPath === rootPath && ctx.path === rootPath) {
        answerRedirect(ctx, 301, rootPath + '/' + queryOf(ctx))
        return ANSWERED
      }
      // Handed over by the raw path, the lookup it started is used rather than made again.
      const found = (ctx.handedOver as ReturnType<StaticLookup> | null) ?? findStaticFile(ctx.forwardedPath)
      if (found === null) return NEXT
      if (ctx.reply === null) {
        ctx.handedOver = found
        return NEEDS_FASTIFY
      }
      return found.then((file) => {
        if (file === null) return NEXT
        // The client's own path with the slash (a rewritten one is served as it is): the page's relative links then
        // resolve inside the folder.
        if (normalizeTrailingSlashes && file.folderWithoutSlash && ctx.forwardedPath === ctx.path) answerRedirect(ctx, 301, ctx.path + '/' + queryOf(ctx))
        else send(ctx, file)
        return ANSWERED
      })
    }
  }
}
