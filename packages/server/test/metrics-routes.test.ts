import { test } from 'tap'
import { createServer } from 'node:http'
import { CABLE_APP, freePort, http, startSite, tenant } from './helpers.js'
import type { Site } from './helpers.js'

// The metrics path and the status page (with its JSON) are Navigator's own: whatever route of the configuration
// covers them (a reverse proxy, a standalone server, a static file of that name, a redirect or rewrite, auth's
// public paths, maintenance mode, a tenant), a request through a proxy gets the 404 of a path that does not exist,
// and the route never sees it. A sibling path shows that the route does cover those paths. Real navigator
// processes; the "proxied" requests carry Fly-Client-IP as those through Fly's edge do.

const OWN_PATHS = ['/metrics', '/navigator/status', '/navigator/status.json']
const PROXIED = { 'fly-client-ip': '203.0.113.9' }
const SERVER = ['  metrics: {}', '  status: {}']

/** The routes, each on a Navigator of its own; `sibling` is a path the route answers with `siblingStatus`. */
interface RouteKind {
  name: string
  site: (target: string, port: number) => Site
  files?: Record<string, string>
  sibling: string
  siblingStatus: number
}

const KINDS: RouteKind[] = [
  {
    name: 'a reverse proxy of every path',
    site: (target) => ({ server: SERVER, routes: ['  reverse_proxies:', '    - prefix: /', `      target: ${target}`], tenants: [] }),
    sibling: '/metricsx',
    siblingStatus: 200
  },
  {
    name: 'a standalone server whose match_path covers them',
    site: (target, port) => ({
      server: SERVER,
      tenants: [],
      after: ['  standalone_servers:', '    - name: srv', '      match_path: "/*"', '      command: node', `      args: ${JSON.stringify([CABLE_APP, String(port)])}`, `      port: ${port}`]
    }),
    sibling: '/navigator/statusx',
    siblingStatus: 200
  },
  {
    name: 'static files of those names in public_dir',
    site: () => ({ server: [...SERVER, '  static:', '    public_dir: public'], tenants: [] }),
    files: { 'public/metrics': 'static metrics\n', 'public/navigator/status': 'static status\n', 'public/navigator/status.json': '{}\n', 'public/navigator/statusx': 'x\n' },
    sibling: '/navigator/statusx',
    siblingStatus: 200
  },
  {
    name: 'a redirect whose pattern matches them',
    site: () => ({ server: SERVER, routes: ['  redirects:', '    - from: "^/(metrics|navigator/status)"', '      to: "/elsewhere/$1"'], tenants: [] }),
    sibling: '/metricsx',
    siblingStatus: 302
  },
  {
    name: 'a rewrite whose pattern matches them, to a tenant',
    site: () => ({ server: SERVER, routes: ['  rewrites:', '    - from: "^/(metrics|navigator/status)(.*)"', '      to: "/app/$1$2"'], tenants: [tenant('app', '/app/', 'start: eager')] }),
    sibling: '/metricsx',
    siblingStatus: 200
  },
  {
    name: 'auth with them among its public paths, and a tenant of every path',
    site: () => ({
      server: SERVER,
      tenants: [tenant('everything', '/', 'start: eager')],
      after: ['auth:', '  enabled: true', '  htpasswd: htpasswd', '  public_paths: ["/metrics", "/metricsx", "/navigator/*"]']
    }),
    files: { htpasswd: 'admin:{SHA}x\n' },
    sibling: '/metricsx',
    siblingStatus: 200
  },
  {
    name: 'maintenance mode',
    site: () => ({ server: SERVER, tenants: [tenant('everything', '/')], after: ['maintenance:', '  enabled: true'] }),
    sibling: '/metricsx',
    siblingStatus: 503
  },
  {
    name: 'a tenant whose path covers them, with sticky sessions',
    site: () => ({
      server: SERVER,
      routes: ['  fly:', '    sticky_sessions:', '      enabled: true', '      paths: ["/*"]'],
      tenants: [tenant('everything', '/', 'start: eager')]
    }),
    sibling: '/navigator/statusx',
    siblingStatus: 200
  }
]

for (const kind of KINDS) {
  test(`through ${kind.name}, the metrics and the status page are 404 to a proxied request, and the route never sees them`, async (t) => {
    const seen: string[] = []
    const target = createServer((req, res) => { seen.push(req.url ?? ''); req.resume(); res.end('target\n') })
    await new Promise<void>((resolve) => { target.listen(0, '127.0.0.1', resolve) })
    t.teardown(() => { target.closeAllConnections(); target.close() })
    const origin = `http://127.0.0.1:${(target.address() as { port: number }).port}`
    const navigator = await startSite(t, kind.site(origin, await freePort()), { env: { FLY_MACHINE_ID: 'm1', FLY_APP_NAME: 'routes', FLY_REGION: 'ord' }, files: kind.files })
    if (kind.name.startsWith('a standalone')) await navigator.waitForLog((line) => line.msg === 'standalone server ready')

    const sibling = await http(navigator.address, kind.sibling, { headers: PROXIED })
    t.equal(sibling.status, kind.siblingStatus, `the route answers ${kind.sibling}`)
    const routedBefore = seen.length
    for (const path of OWN_PATHS) {
      t.match(await http(navigator.address, path, { headers: PROXIED }), { status: 404, text: 'Not Found\n' }, `${path}, proxied: 404`)
      t.match(await http(navigator.address, `${path}?x=1`, { headers: PROXIED }), { status: 404, text: 'Not Found\n' }, `${path} with a query, proxied: 404`)
    }
    t.equal(seen.length, routedBefore, 'no request for them reached the reverse proxy\'s target')
    const metrics = await http(navigator.address, '/metrics')
    t.equal(metrics.status, 200, 'asked straight from this computer: the metrics')
    t.match(metrics.text, /^# HELP navigator_requests_total /m)
    t.equal((await http(navigator.address, '/navigator/status.json')).status, 200, 'and the status JSON')
    // An app that got one of the paths would have been sent it: its latency histogram would count it.
    const tenantRequests = metrics.text.split('\n')
      .filter((line) => line.startsWith('navigator_upstream_response_seconds_count{'))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
    t.equal(tenantRequests, kind.siblingStatus === 200 && !kind.name.startsWith('static') && !kind.name.startsWith('a reverse') ? 1 : 0, 'the apps were sent the sibling path only')
  })
}

test('a rewrite of another path to the metrics path is the app\'s request for that path, never Navigator\'s metrics', async (t) => {
  const navigator = await startSite(t, {
    server: SERVER,
    routes: ['  rewrites:', '    - from: "^/to-metrics$"', '      to: "/metrics"'],
    tenants: [tenant('everything', '/', 'start: eager')]
  }, { env: { FLY_MACHINE_ID: 'm1' } })
  const answer = await http(navigator.address, '/to-metrics', { headers: PROXIED })
  t.equal(answer.status, 200)
  t.equal((JSON.parse(answer.text) as { url: string }).url, '/metrics', 'the tenant was asked for its own /metrics')
  t.notMatch(answer.text, /navigator_requests_total/, 'and no metrics of Navigator came back')
})
