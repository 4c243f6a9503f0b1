// `server.static` beyond its folder: which files are static, which names are tried, and their Cache-Control.
// The schema checks the shapes; this turns them into what the static-files step reads.

import { DEFAULT_NORMALIZE_TRAILING_SLASHES } from './defaults.js'
import { parseCacheDuration } from './duration.js'
import type { KeyPath, ProblemCollector } from './problems.js'
import type { CacheControlOverride, CacheControlRule, StaticRules } from './types.js'

type Fields = Record<string, unknown>

const fields = (value: unknown): Fields => (typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Fields : {})
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [])

/** `server.static` (the whole section): its rules, with every problem reported at its key. */
export function normaliseStaticRules (value: unknown, problems: ProblemCollector): StaticRules {
  const section = fields(value)
  const at: KeyPath = ['server', 'static']
  const cacheControl = fields(section.cache_control)
  const defaultImmutable = cacheControl.default_immutable === true
  const overrides: CacheControlOverride[] = []
  const given = Array.isArray(cacheControl.overrides) ? cacheControl.overrides : []
  given.forEach((item, index) => {
    const override = fields(item)
    const maxAgeMs = maxAge(override.max_age, [...at, 'cache_control', 'overrides', index, 'max_age'], problems)
    if (typeof override.path !== 'string' || maxAgeMs === null) return
    overrides.push({ path: override.path, maxAgeMs, immutable: override.immutable === true })
  })
  const defaultMaxAge = cacheControl.default === undefined ? null : maxAge(cacheControl.default, [...at, 'cache_control', 'default'], problems)
  const defaultRule: CacheControlRule | null = defaultMaxAge === null ? null : { maxAgeMs: defaultMaxAge, immutable: defaultImmutable }
  return {
    allowedExtensions: Array.isArray(section.allowed_extensions)
      ? strings(section.allowed_extensions).map((extension) => extension.replace(/^\./, '').toLowerCase())
      : null,
    // `/index.html` (the Go Navigator's examples) is the file `index.html` in the folder the path names.
    tryFiles: strings(section.try_files).map((suffix) => suffix.replace(/^\//, '')),
    normalizeTrailingSlashes: typeof section.normalize_trailing_slashes === 'boolean' ? section.normalize_trailing_slashes : DEFAULT_NORMALIZE_TRAILING_SLASHES,
    cacheControl: { default: defaultRule, overrides }
  }
}

function maxAge (value: unknown, path: KeyPath, problems: ProblemCollector): number | null {
  try {
    return parseCacheDuration(value === 0 ? '0' : value as string)
  } catch (err) {
    problems.add(path, (err as Error).message)
    return null
  }
}
