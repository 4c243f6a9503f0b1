import { addResponseHeaders, ANSWERED, answer, isUpgrade, NEXT } from '@navigator/proxy'
import type { ForwardOptions, HeaderList, RequestContext, Step } from '@navigator/proxy'
import type { ReverseProxyRule } from '@navigator/config'
import { clientAddress, clientScheme, requestHost } from '../forwarded.js'
import { answerHeaders } from './health-check.js'
import type { StepOptions } from './index.js'

/** `$host`, `$remote_addr`, `$scheme` in a configured request header value. */
const VARIABLE = /\$(host|remote_addr|scheme)(?![A-Za-z0-9_])/g
/** `$1`, `$2` ... in a target: the groups of the route's path. */
const GROUP = /\$(\d+)/g
/**
 * What a Host header may be to be copied into another header: a name or address and a port. Node already refuses
 * CR and LF in a request; this keeps any other oddity of a client's Host out of a header the target may trust.
 */
const SAFE_HOST = /^[A-Za-z0-9.\-_:[\]]{1,255}$/
const NOT_RELAYED = Object.freeze(['content-type', 'text/plain; charset=utf-8'])

interface Route {
  rule: ReverseProxyRule
  origin: string
  hostname: string
  port: number
  /** The target's path without its trailing "/" ("" for "/"), or, when it uses $1, $2 ..., as written. */
  targetPath: string
  usesGroups: boolean
  /** The request headers when none uses a variable (one frozen object for every request), else null. */
  fixedOptions: ForwardOptions | null
  /** Every configured request header, the target's Host first (a configured Host replaces it). */
  headers: Readonly<Record<string, string>>
  responseHeaders: Readonly<Record<string, string>> | null
  preflight: HeaderList
}

/**
 * `routes.reverse_proxies`: the first route whose prefix or path (a regular expression) matches the forwarded path
 * sends the request to its target, any http(s) URL, through the one upstream proxy (502 when it cannot be reached).
 * The target gets its own Host; the request's is in X-Forwarded-Host. With `websocket: true` an upgrade is relayed.
 */
export function reverseProxies ({ config, proxy, webSockets, trustForwarded }: StepOptions): Step | null {
  const routes = config.routes.reverseProxies.map(compileRoute)
  if (routes.length === 0) return null
  // server.trust_proxy: $remote_addr, $scheme and $host are then those the trusted proxy says.
  const trusted = trustForwarded
  return {
    name: 'reverse-proxies',
    run (ctx) {
      for (const route of routes) {
        const path = upstreamPathOf(route, ctx)
        if (path === null) continue
        if (isUpgrade(ctx.req)) return relayWebSocket(route, ctx, path)
        if (route.responseHeaders !== null && ctx.req.method === 'OPTIONS') {
          // A CORS preflight: answered with the route's headers, as the Go Navigator does.
          answer(ctx, 200, route.preflight, '')
          return ANSWERED
        }
        if (route.responseHeaders !== null) addResponseHeaders(ctx, route.responseHeaders)
        proxy.relay(ctx, { origin: route.origin, path }, route.fixedOptions ?? { headers: substituted(route.headers, ctx, trusted) })
        return ANSWERED
      }
      return NEXT
    }
  }

  async function relayWebSocket (route: Route, ctx: RequestContext, path: string): Promise<typeof ANSWERED> {
    if (!route.rule.websocket) {
      answer(ctx, 400, NOT_RELAYED, 'WebSockets are not relayed on this route\n')
      return ANSWERED
    }
    await webSockets.relay(ctx, { host: route.hostname, port: route.port, path, release: noop })
    return ANSWERED
  }
}

function noop (): void {}

function compileRoute (rule: ReverseProxyRule): Route {
  const url = new URL(rule.target)
  const usesGroups = rule.pattern !== null && rule.target.match(GROUP) !== null
  // The path as written in the target, where URL would have encoded the "$" of $1.
  const slash = rule.target.indexOf('/', rule.target.indexOf('//') + 2)
  const written = slash === -1 ? '/' : rule.target.slice(slash)
  const headers = Object.freeze({ host: url.host, ...rule.headers })
  const variables = Object.values(rule.headers).some((value) => value.match(VARIABLE) !== null)
  const responseHeaders = Object.keys(rule.responseHeaders).length === 0 ? null : Object.freeze({ ...rule.responseHeaders })
  return {
    rule,
    origin: url.origin,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
    targetPath: usesGroups ? written : url.pathname.replace(/\/+$/, ''),
    usesGroups,
    fixedOptions: variables ? null : Object.freeze({ headers }),
    headers,
    responseHeaders,
    preflight: answerHeaders(rule.responseHeaders)
  }
}

/** The path and query the target is asked for, or null when the route does not match. */
function upstreamPathOf (route: Route, ctx: RequestContext): string | null {
  const path = ctx.forwardedPath
  const query = ctx.upstreamPath.slice(path.length)
  const { pattern, prefix, stripPath } = route.rule
  if (prefix !== null) {
    if (!path.startsWith(prefix)) return null
    return joined(route.targetPath, stripPath ? path.slice(prefix.length) : path, query)
  }
  const match = pattern === null ? null : pattern.exec(path)
  if (match === null) return null
  if (route.usesGroups) {
    const target = route.targetPath.replace(GROUP, (_, group: string) => match[Number(group)] ?? '')
    return target + (query === '' ? '' : (target.includes('?') ? '&' + query.slice(1) : query))
  }
  const rest = stripPath ? path.slice(0, match.index) + path.slice(match.index + match[0].length) : path
  return joined(route.targetPath, rest, query)
}

function joined (base: string, rest: string, query: string): string {
  const path = rest.startsWith('/') ? rest : '/' + rest
  return base + path + query
}

/** The configured headers with `$host`, `$remote_addr` and `$scheme` of this request. */
function substituted (headers: Readonly<Record<string, string>>, ctx: RequestContext, trusted: boolean): Record<string, string> {
  const result: Record<string, string> = {}
  for (const name in headers) result[name] = headers[name].replace(VARIABLE, (_, variable: string) => valueOf(variable, ctx, trusted))
  return result
}

function valueOf (variable: string, ctx: RequestContext, trusted: boolean): string {
  if (variable === 'remote_addr') return clientAddress(ctx.req, trusted)
  if (variable === 'scheme') return clientScheme(ctx.req, trusted)
  const host = requestHost(ctx.req, trusted) ?? ''
  return SAFE_HOST.test(host) ? host : ''
}
