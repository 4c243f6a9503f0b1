import { realpath, stat } from 'node:fs/promises'
import { sep } from 'node:path'

/** Served for a request on a folder of public_dir, when present. */
export const INDEX_FILE = 'index.html'

/**
 * Turns a forwarded URL path into the path of a regular file under publicDir,
 * relative to it and starting with "/", or null when there is no such file.
 *
 * The path is percent-decoded exactly once; anything that could name a file
 * outside publicDir (a ".." segment, a backslash, a NUL byte, a malformed
 * escape, a symbolic link pointing out) yields null, so the request simply
 * continues down the pipeline. Folders are never listed: a folder answers with
 * its index.html or not at all.
 */
export function createStaticFileFinder (publicDir: string): (forwardedPath: string) => Promise<string | null> {
  let resolvedRoot: string | null = null
  return async function findStaticFile (forwardedPath) {
    resolvedRoot ??= await realpath(publicDir).catch(() => null)
    if (resolvedRoot === null) return null
    return locate(publicDir, resolvedRoot, forwardedPath)
  }
}

async function locate (publicDir: string, resolvedRoot: string, forwardedPath: string): Promise<string | null> {
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
    segments.push(segment)
  }

  let relative = '/' + segments.join('/')
  let stats = await stat(publicDir + relative).catch(() => null)
  if (stats === null) return null
  if (stats.isDirectory()) {
    relative = segments.length === 0 ? '/' + INDEX_FILE : relative + '/' + INDEX_FILE
    stats = await stat(publicDir + relative).catch(() => null)
    if (stats === null) return null
  }
  if (!stats.isFile()) return null

  // A symbolic link inside public_dir must not lead outside of it.
  const target = await realpath(publicDir + relative).catch(() => null)
  if (target === null || !target.startsWith(resolvedRoot + sep)) return null
  return relative
}
