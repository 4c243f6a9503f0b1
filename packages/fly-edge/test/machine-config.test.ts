import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test, type Test } from 'tap'
import { launchMachines } from '../src/launch.js'
import { machineConfigText, ownConfigText, planPorts, PORTS_PER_MACHINE, SPARE_TENANT_PORTS } from '../src/machine-config.js'
import { yamlValues } from '../src/yaml-lines.js'

const navigator = fileURLToPath(new URL('./fixtures/fake-navigator.mjs', import.meta.url))

// The shape of the Rails example: fixed ports everywhere, the cable port repeated in its --bind argument.
const RAILS_LIKE = `server:
  listen: 3000                   # = internal_port in fly.toml
routes:
  fly:
    sticky_sessions:
      enabled: true
applications:
  start_port: 4100
  tenants:
    - name: a
      path: /a
      var: { data: "\${NAVIGATOR_DATA:-db}" }
  standalone_servers:
    - name: cable
      match_path: /cable
      command: bundle
      args: [exec, puma, --bind, "tcp://127.0.0.1:4001", cable/config.ru]
      port: 4001
      env:
        CABLE_URL: "ws://127.0.0.1:4001/cable"
        OTHER: "14001 40010"
`

async function configFile (t: Test, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'navigator.yml')
  await writeFile(file, text)
  return file
}

test('a Machine\'s copy moves a fixed listen, start_port and standalone port into its block, the port in the server\'s args and env too', async (t) => {
  t.same(planPorts(RAILS_LIKE), { blockSize: PORTS_PER_MACHINE, startPort: 2, standalone: new Map([[0, 1]]) })
  const text = machineConfigText(RAILS_LIKE, 20010, { m1: 'http://127.0.0.1:20030' })
  t.equal(text, RAILS_LIKE
    .replace('listen: 3000', 'listen: 20010')
    .replace('sticky_sessions:\n', 'sticky_sessions:\n      peers: {"m1":"http://127.0.0.1:20030"}\n')
    .replace('start_port: 4100', 'start_port: 20012')
    .replace('tcp://127.0.0.1:4001', 'tcp://127.0.0.1:20011')
    .replace('port: 4001', 'port: 20011')
    .replace('ws://127.0.0.1:4001/cable', 'ws://127.0.0.1:20011/cable'),
  'only those values change; comments, quoting and numbers that merely contain the port stay')
})

test('server.listen keeps its host; a config without one gets the Machine\'s port', async (t) => {
  const listen = (value: string): string => machineConfigText(`server:\n  listen: ${value}\n`, 20010, {}, { env: { HOST: '0.0.0.0' } })
  t.equal(listen('"127.0.0.1:3000"'), 'server:\n  listen: "127.0.0.1:20010"\n')
  t.equal(listen("'[::1]:3000'"), 'server:\n  listen: "[::1]:20010"\n')
  t.equal(listen('":3000"'), 'server:\n  listen: 20010\n')
  t.equal(listen('"${HOST}:3000"'), 'server:\n  listen: "0.0.0.0:20010"\n', 'a host from the environment is resolved')
  t.equal(listen('"127.0.0.1:${NAVIGATOR_PORT:-3000}"'), 'server:\n  listen: "127.0.0.1:20010"\n')
  t.equal(machineConfigText('server:\n  health_check: /up\n', 20010, {}), 'server:\n  listen: 20010\n  health_check: /up\n')
  t.equal(machineConfigText('routes: {}\n', 20010, {}), 'routes: {}\nserver:\n  listen: 20010\n')
})

test('values derived from ${NAVIGATOR_PORT} stay as written, and the ports the edge picks avoid the offsets they use', async (t) => {
  const base = [
    'server:', '  listen: "127.0.0.1:${NAVIGATOR_PORT}"',
    'applications:', '  start_port: 4100',
    '  standalone_servers:',
    '  - name: one', '    port: ${NAVIGATOR_PORT+1}',
    '  - name: two', '    args: ["--port=5000"]', '    port: 5000',
    ''
  ].join('\n')
  t.same(planPorts(base), { blockSize: PORTS_PER_MACHINE, startPort: 3, standalone: new Map([[1, 2]]) })
  t.equal(machineConfigText(base, 20010, {}), base
    .replace('${NAVIGATOR_PORT}', '20010').replace('${NAVIGATOR_PORT+1}', '20011')
    .replace('start_port: 4100', 'start_port: 20013').replaceAll('5000', '20012'), 'an indentless sequence is followed too')
})

test('${PORT} in a standalone server\'s args and env is the port that server gets on the Machine, moved or derived', async (t) => {
  const base = [
    'applications:',
    '  standalone_servers:',
    '    - name: moved',
    '      args: [srv.mjs, "${PORT}", "--url=http://127.0.0.1:${PORT:-4001}/"]',
    '      port: 4001',
    '      env:',
    '        OWN: "${PORT}"',
    '    - name: derived',
    '      args:',
    '        - "${PORT}"',
    '      port: ${NAVIGATOR_PORT+5}',
    ''
  ].join('\n')
  const text = machineConfigText(base, 20010, {}, { env: {} })
  t.match(text, 'args: [srv.mjs, "20011", "--url=http://127.0.0.1:20011/"]', 'a moved port: every form of ${PORT}, defaults too')
  t.match(text, 'OWN: "20011"')
  t.match(text, '        - "20015"', 'a port derived from ${NAVIGATOR_PORT+N}: the derived port')
  t.notMatch(text, '${PORT', 'no ${PORT} is left for Navigator to take from its own environment')
  t.equal(ownConfigText(base, 20010, {}), base.replaceAll('${PORT}', '4001').replace('${PORT:-4001}', '4001')
    .replace('- "4001"', '- "20015"').replace('${NAVIGATOR_PORT+5}', '20015'),
  'the file as written reads each server\'s own port as ${PORT}, every value on its line')
  t.equal(machineConfigText(base, 20010, {}, { env: { PORT: '9999' } }), text, 'a PORT in the edge\'s environment does not leak into the Machines')
})

test('the tenant range grows the block: one port per tenant and SPARE_TENANT_PORTS more', async (t) => {
  const tenants = Array.from({ length: 12 }, (_, i) => `    - name: t${i}\n      path: /t${i}\n`).join('')
  const plan = planPorts(`applications:\n  tenants:\n${tenants}`)
  t.equal(plan.startPort, 1)
  t.equal(plan.blockSize, 1 + 12 + SPARE_TENANT_PORTS)
  t.equal(machineConfigText(`applications:\n  tenants:\n${tenants}`, 20000, {}).split('\n').slice(0, 2).join('\n'),
    'applications:\n  start_port: 20001', 'a start_port is added when the file has none')
})

test('the YAML reader follows block mappings and sequences and passes over block scalars and open flow collections', async (t) => {
  const values = yamlValues([
    'a:', '  b: 1 # note', '  "c d": \'x # y\'', '  list:', '    - one', '    - k: v', '      k2: v2', '  text: |',
    '    port: 9', '  flow: [1,', '    port: 2]', 'e: "q\\"#"'
  ].join('\n'))
  t.same(values.map((v) => [v.path.join('.'), v.text]), [
    ['a', ''], ['a.b', '1'], ['a.c d', "'x # y'"], ['a.list', ''], ['a.list.0', 'one'], ['a.list.1.k', 'v'],
    ['a.list.1.k2', 'v2'], ['a.text', '|'], ['a.flow', '[1,'], ['e', '"q\\"#"']
  ])
})

test('a port the reader cannot move is refused before any process starts, never shared by the Machines', async (t) => {
  const config = await configFile(t, 'server:\n  listen: 3000\napplications: { start_port: 4100 }\n')
  await t.rejects(launchMachines({ config, count: 2, app: 'demo', navigator }), {
    code: 'NAV_FLY_EDGE_INVALID_OPTION', message: /cannot give each Machine its own applications\.start_port/
  })
  t.same((await readdir(join(config, '..'))).filter((f) => f !== 'navigator.yml'), [], 'no Machine config is left behind')
})

test('a problem of the config fails the launch with Navigator\'s message at its line in the user\'s file', async (t) => {
  const config = await configFile(t, 'server:\n  listen: 3000\n  shutdown_timout: 5s\n')
  const launched = launchMachines({ config, count: 1, app: 'demo', navigator, dataDir: join(config, '..', 'data') })
  await t.rejects(launched, { code: 'NAV_FLY_EDGE_LAUNCH_FAILED', message: /navigator\.yml:3:3: server\.shutdown_timout: unknown key/ })
  t.ok(existsSync(join(config, '..', 'data')), 'a data folder that was given is kept')
})
