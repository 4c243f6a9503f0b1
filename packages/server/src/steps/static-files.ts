import { lstatSync, realpathSync, statSync } from 'node:fs'
import type { Stats } from 'node:fs'
import { realpath } from 'node:fs/promises'
import { sep } from 'node:path'
import { ANSWERED, isUpgrade, NEEDS_FASTIFY, NEXT, type Step } from '@navigator/proxy'
import type { StepOptions } from './index.js'

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
}

/** The precompressed siblings @fastify/static looks for (`preCompressed: true`). */
export const PRECOMPRESSED_EXTENSIONS: readonly string[] = ['.br', '.gz']

/** The one folder of dot-named entries served whatever `allow_dotfiles` says (RFC 8615: ACME challenges, security.txt). */
export const WELL_KNOWN = '.well-known'

export function createStaticFileFinder (publicDir: string, allowDotfiles = false): StaticFileFinder {
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
    const relative = locate(publicDir, forwardedPath, allowDotfiles)
    if (relative === null) {
      misses.add(forwardedPath)
      return null
    }
    return insideRoot(publicDir, root, relative)
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

function locate (publicDir: string, forwardedPath: string, allowDotfiles: boolean): string | null {
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

  let relative = '/' + segments.join('/')
  let stats = statOf(publicDir + relative)
  if (stats === undefined) return null
  if (stats.isDirectory()) {
    relative = segments.length === 0 ? '/' + INDEX_FILE : relative + '/' + INDEX_FILE
    stats = statOf(publicDir + relative)
    if (stats === undefined) return null
  }
  return stats.isFile() ? relative : null
}

/** A symbolic link inside public_dir must not lead outside of it: the file's, nor a precompressed sibling's. */
async function insideRoot (publicDir: string, root: string, relative: string): Promise<StaticFile | null> {
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
  return { relative, siblingsContained }
}

/**
 * Files under `server.static.public_dir`, for GET and HEAD on the forwarded path (an upgrade is never a file). The
 * file is sent by @fastify/static (ETag, Last-Modified, Range, precompressed siblings), so a raw path hands the
 * request to Fastify once a file is found.
 */
export function staticFiles ({ config }: StepOptions): Step {
  const publicDir = config.server.publicDir
  const findStaticFile = createStaticFileFinder(publicDir, config.server.allowDotfiles)
  // Said once per file (a planted link is worth a warning, not one per request).
  const warned = new Set<string>()
  return {
    name: 'static-files',
    run (ctx) {
      const method = ctx.req.method
      if ((method !== 'GET' && method !== 'HEAD') || isUpgrade(ctx.req)) return NEXT
      // Handed over by the raw path, the lookup it started is used rather than made again.
      const found = (ctx.handedOver as ReturnType<StaticFileFinder> | null) ?? findStaticFile(ctx.forwardedPath)
      if (found === null) return NEXT
      const reply = ctx.reply
      if (reply === null) {
        ctx.handedOver = found
        return NEEDS_FASTIFY
      }
      return found.then((file) => {
        if (file === null) return NEXT
        // @fastify/static picks a sibling by Accept-Encoding alone: without it, only the file itself is sent.
        if (!file.siblingsContained) {
          delete ctx.req.headers['accept-encoding']
          if (!warned.has(file.relative) && warned.size < 1000) {
            warned.add(file.relative)
            ctx.log.warn({ file: file.relative }, 'a precompressed sibling leads outside public_dir: the file is sent uncompressed')
          }
        }
        reply.sendFile(file.relative, publicDir)
        return ANSWERED
      })
    }
  }
}
