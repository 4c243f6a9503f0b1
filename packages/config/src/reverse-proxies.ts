// `routes.reverse_proxies`, the Go Navigator's reverse proxies to any HTTP server: their checks and their normalised
// form. The target's host is fixed by the config: a request's path can choose its path ($1, $2 ...), never its host.

import type { RegexCompiler } from './auth.js'
import { headerMap } from './headers.js'
import type { KeyPath, ProblemCollector } from './problems.js'
import type { ReverseProxyRule } from './types.js'

/** `$1`, `$2` ... in a target: the groups of the route's path. */
export const TARGET_GROUP = /\$(\d+)/g

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** `routes.reverse_proxies`, in order. */
export function normaliseReverseProxies (value: unknown, problems: ProblemCollector, compile: RegexCompiler): ReverseProxyRule[] {
  if (!Array.isArray(value)) return []
  return value.map((item, index) => normaliseRoute(isRecord(item) ? item : {}, ['routes', 'reverse_proxies', index], problems, compile))
}

function normaliseRoute (route: Record<string, unknown>, at: KeyPath, problems: ProblemCollector, compile: RegexCompiler): ReverseProxyRule {
  const hasPath = typeof route.path === 'string'
  const hasPrefix = typeof route.prefix === 'string'
  if (hasPath === hasPrefix) problems.add(at, 'give exactly one of path (a regular expression) and prefix')
  if (hasPrefix && !(route.prefix as string).startsWith('/')) problems.add([...at, 'prefix'], 'must start with "/"')
  const target = typeof route.target === 'string' ? route.target : ''
  checkTarget(target, hasPath, route.websocket === true, [...at, 'target'], problems)
  return {
    name: typeof route.name === 'string' ? route.name : at.join('.'),
    pattern: hasPath ? compile(route.path, [...at, 'path']) : null,
    prefix: hasPrefix && !hasPath ? route.prefix as string : null,
    target,
    stripPath: route.strip_path === true,
    headers: headerMap(route.headers, [...at, 'headers'], problems),
    responseHeaders: headerMap(route.response_headers, [...at, 'response_headers'], problems),
    websocket: route.websocket === true
  }
}

/** An http(s) URL without query or fragment, whose `$1`, `$2` ... (only with a path) are in its path alone. */
function checkTarget (target: string, hasPath: boolean, websocket: boolean, at: KeyPath, problems: ProblemCollector): void {
  let url: URL
  try {
    url = new URL(target)
  } catch {
    problems.add(at, 'must be an http:// or https:// URL such as http://127.0.0.1:4000/api')
    return
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.add(at, 'must be an http:// or https:// URL')
  else if (url.search !== '' || url.hash !== '') problems.add(at, 'must have no query string or fragment (the request\'s query string is sent)')
  else if (url.username !== '' || url.password !== '') problems.add(at, 'must carry no credentials (set an Authorization header in headers)')
  else if (url.origin.includes('$') || url.host.includes('$')) problems.add(at, '$1, $2 ... may stand in the path of the target only, never in its host')
  else if (!hasPath && target.match(TARGET_GROUP) !== null) problems.add(at, '$1, $2 ... need a path (a regular expression with groups), not a prefix')
  else if (websocket && url.protocol === 'https:') problems.add(at, 'websocket: true needs an http:// target (WebSockets are relayed over plain TCP)')
}
