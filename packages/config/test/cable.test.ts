import { test } from 'tap'
import { DEFAULT_CABLE_BROADCAST_PATH, DEFAULT_CABLE_ENABLED, DEFAULT_CABLE_PATH, parseConfig } from '../src/index.js'
import { problemLines as problems } from './helpers.js'

// cable: the TurboCable hub. Off unless enabled (the Go Navigator's default is on); its two paths are URL paths of
// their own, distinct from each other and, when the hub is on, from Navigator's other own paths.

const OPTIONS = { dir: '/srv/app', env: {} }

test('absent, empty or without enabled: off, at /cable and /_broadcast', async (t) => {
  const off = { enabled: false, path: '/cable', broadcastPath: '/_broadcast' }
  t.same(parseConfig('', OPTIONS).cable, off, 'absent')
  t.same(parseConfig('cable: {}\n', OPTIONS).cable, off, 'empty')
  t.same(parseConfig('cable:\n  path: /cable\n', OPTIONS).cable, off, 'a path alone')
  t.same([DEFAULT_CABLE_ENABLED, DEFAULT_CABLE_PATH, DEFAULT_CABLE_BROADCAST_PATH], [false, '/cable', '/_broadcast'], 'the exported defaults')
})

test('enabled, with paths of its own: read as written', async (t) => {
  t.same(parseConfig('cable:\n  enabled: true\n', OPTIONS).cable, { enabled: true, path: '/cable', broadcastPath: '/_broadcast' })
  t.same(parseConfig('cable:\n  enabled: true\n  path: /websocket\n  broadcast_path: /internal/broadcast\n', OPTIONS).cable,
    { enabled: true, path: '/websocket', broadcastPath: '/internal/broadcast' })
})

test('a path that is not a URL path, or the same for both, is a problem with what to write instead', async (t) => {
  t.same(problems('cable:\n  path: cable\n'), ['cable.path: must be a URL path starting with "/" (no spaces, "?" or "#"), such as /cable'])
  t.same(problems('cable:\n  broadcast_path: "/_broadcast?x=1"\n'), ['cable.broadcast_path: must be a URL path starting with "/" (no spaces, "?" or "#"), such as /_broadcast'])
  t.same(problems('cable:\n  enabled: true\n  path: /ws\n  broadcast_path: /ws\n'), ['cable.broadcast_path: /ws is cable.path already: give the broadcasts a path of their own (the default is /_broadcast)'])
  t.same(problems('cable:\n  broadcast_path: /cable\n'), ['cable.broadcast_path: /cable is cable.path already: give the broadcasts a path of their own (the default is /_broadcast)'], 'even when off')
})

test('when on, a path that is the health check, the metrics or the status page is a problem', async (t) => {
  t.same(problems('server:\n  health_check: /up\ncable:\n  enabled: true\n  path: /up\n'), ['cable.path: /up is server.health_check already: choose another path for cable.path'])
  t.same(problems('server:\n  metrics: {}\ncable:\n  enabled: true\n  broadcast_path: /metrics\n'), ['cable.broadcast_path: /metrics is server.metrics.path already: choose another path for cable.broadcast_path'])
  t.same(problems('server:\n  status: {}\ncable:\n  enabled: true\n  path: /navigator/status.json\n'), ['cable.path: /navigator/status.json is the JSON of server.status already: choose another path for cable.path'])
  t.same(problems('server:\n  health_check: /up\ncable:\n  path: /up\n'), [], 'off: the paths are not used')
})

test('the schema refuses an unknown key and a wrong type, naming the key', async (t) => {
  const unknown = problems('cable:\n  enabled: true\n  paths: /cable\n')
  t.equal(unknown.length, 1)
  t.match(unknown[0], /^cable(\.paths)?: /)
  t.match(problems('cable:\n  enabled: "yes"\n'), [/^cable\.enabled: /])
})
