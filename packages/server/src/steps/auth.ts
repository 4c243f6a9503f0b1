import { ANSWERED, answer, NEXT, type RequestContext, type Step } from '@navigator/proxy'
import type { AuthConfig } from '@navigator/config'
import { HtpasswdFile } from '../htpasswd.js'
import type { StepOptions } from './index.js'

const BODY = 'Unauthorized\n'

/** A glob's `*` and `?` stay within one path segment; everything else is literal. */
function globSource (glob: string): string {
  return glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')
}

/**
 * A `public_paths` entry as a regular expression on the whole path: "/assets/" a prefix, "/assets/*" everything
 * below /assets/ (not /assets itself, nor /assetsX), "*.css" a last segment, anything else the exact path.
 */
export function compilePublicPath (pattern: string): RegExp {
  if (!pattern.startsWith('/')) return new RegExp(`(?:^|/)${globSource(pattern)}$`)
  if (pattern.endsWith('/*')) return new RegExp(`^${globSource(pattern.slice(0, -1))}.*$`)
  if (pattern.endsWith('/')) return new RegExp(`^${globSource(pattern)}.*$`)
  return new RegExp(`^${globSource(pattern)}$`)
}

/** The realm a path asks a password for, or null when it needs none: auth_patterns first, then public_paths. */
function realmRule (settings: AuthConfig): (path: string) => string | null {
  const publicPaths = settings.publicPaths.map(compilePublicPath)
  return (path) => {
    for (const rule of settings.authPatterns) {
      if (rule.pattern.test(path)) return rule.realm
    }
    for (const pattern of publicPaths) {
      if (pattern.test(path)) return null
    }
    return settings.realm
  }
}

/** `WWW-Authenticate` for a realm, with `"` and `\` escaped as RFC 9110 quoted strings want them. */
function challenge (realm: string): readonly string[] {
  return Object.freeze([
    'www-authenticate', `Basic realm="${realm.replace(/["\\]/g, '\\$&')}"`,
    'content-type', 'text/plain; charset=utf-8'
  ])
}

/** The auth step, which also tells whether a path needs no password (the status page asks, to let those who pass in). */
export interface AuthStep extends Step {
  isPublic (path: string): boolean
}

/**
 * `auth`: HTTP Basic against the htpasswd file, before anything is proxied or replayed. A path is public only when
 * both the path the client sent (replay rules and sticky paths route on it) and the forwarded path (the apps route
 * on it) are: a rewrite cannot carry a request from a public path to a protected one. Paths arrive with their dot
 * segments resolved (normalise-path), so `/assets/../admin` is `/admin` here.
 */
export function auth ({ config, log }: StepOptions): AuthStep | null {
  const settings = config.auth
  if (settings === null) return null
  const file = new HtpasswdFile(settings.htpasswd, log)
  const realmOf = realmRule(settings)
  const challenges = new Map<string, readonly string[]>()
  const refuse = (ctx: RequestContext, realm: string): typeof ANSWERED => {
    let headers = challenges.get(realm)
    if (headers === undefined) challenges.set(realm, headers = challenge(realm))
    ctx.log.debug({ path: ctx.path }, 'authentication required')
    answer(ctx, 401, headers, BODY)
    return ANSWERED
  }
  return {
    name: 'auth',
    isPublic: (path) => realmOf(path) === null,
    run (ctx) {
      let realm = realmOf(ctx.path)
      if (realm === null && ctx.forwardedPath !== ctx.path) realm = realmOf(ctx.forwardedPath)
      if (realm === null) return NEXT
      const verified = file.check(ctx.req.headers.authorization)
      if (verified === true) return NEXT
      if (verified === false) return refuse(ctx, realm)
      const needed = realm
      return verified.then((ok) => ok ? NEXT : refuse(ctx, needed))
    }
  }
}
