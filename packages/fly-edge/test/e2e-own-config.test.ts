// An app's own config, with fixed ports as it would be written for one computer, on two real navigator Machines.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { launchMachines } from '../src/launch.js'
import { planPorts } from '../src/machine-config.js'
import { request } from './fixtures.js'
import { TEST_SHUTDOWN_TIMEOUT } from './e2e-helpers.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
const READY_MS = 30_000

const CONFIG = `server:
  listen: 3000
  shutdown_timeout: ${TEST_SHUTDOWN_TIMEOUT}
routes:
  fly:
    sticky_sessions:
      enabled: true
      paths: ["/app/*", "/port", "/own-port"]
applications:
  start_port: 4100
  tenants:
    - name: app
      path: /app
      working_dir: ${FIXTURES}
      command: node
      args: [port-server.mjs, "\${PORT}"]
  standalone_servers:
    - name: port-server
      match_path: /port
      command: node
      args: [port-server.mjs, "4001"]
      working_dir: ${FIXTURES}
      port: 4001
      env:
        SELF_URL: "http://127.0.0.1:4001/port"
    - name: own-port-server
      match_path: /own-port
      command: node
      args: [port-server.mjs, "\${PORT}"]
      working_dir: ${FIXTURES}
      port: 4002
`

interface PortReply { machine: string, port: number, envPort: string, selfUrl: string | null }

// The second standalone server takes its port as ${PORT} in its args: the edge gives it the Machine's own port there too.
test('a config with a fixed listen, start_port and standalone port runs on two Machines, each on its own ports, both standalone servers up', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-own-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = join(dir, 'navigator.yml')
  await writeFile(config, CONFIG)
  const output: string[] = []
  const waiters = new Set<() => void>()
  const launched = await launchMachines({
    config,
    count: 2,
    app: 'own-config',
    env: { LOG_LEVEL: 'info' },
    onOutput: (id, line) => {
      output.push(`[${id}] ${line}`)
      for (const wake of waiters) wake()
    }
  })
  t.teardown(() => launched.stop())
  const readyCount = (id: string): number => output.filter((line) => line.startsWith(`[${id}] `) && line.includes('"msg":"standalone server ready"')).length
  const bothReady = (): boolean => launched.machines.every((m) => readyCount(m.id) === 2)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the standalone servers did not come up:\n${output.join('\n')}`)), READY_MS)
    const check = (): void => {
      if (!bothReady()) return
      clearTimeout(timer)
      waiters.delete(check)
      resolve()
    }
    waiters.add(check)
    check()
  })

  const { blockSize } = planPorts(CONFIG)
  const ports: number[] = []
  for (const machine of launched.machines) {
    const port = Number(new URL(machine.url).port)
    const copy = await readFile(launched.configFiles[machine.id], 'utf8')
    t.match(copy, `listen: ${port}\n`, 'the Machine listens on its own port')
    t.match(copy, `start_port: ${port + 3}\n`)
    t.match(copy, `args: [port-server.mjs, "${port + 1}"]`)
    t.match(copy, `args: [port-server.mjs, "${port + 2}"]`, '${PORT} in a standalone server\'s args is its own port on this Machine')
    const standalone = (await request(`${machine.url}/port`)).json<PortReply>()
    t.same(standalone, { machine: machine.id, port: port + 1, envPort: String(port + 1), selfUrl: `http://127.0.0.1:${port + 1}/port` },
      'the standalone server runs on the Machine\'s own port, which its args, PORT and env agree on')
    const ownPort = (await request(`${machine.url}/own-port`)).json<PortReply>()
    t.same(ownPort, { machine: machine.id, port: port + 2, envPort: String(port + 2), selfUrl: null },
      'the server given ${PORT} in its args listens on the Machine\'s own port, the one Navigator relays to')
    const tenant = (await request(`${machine.url}/app/whoami`)).json<PortReply>()
    t.equal(tenant.machine, machine.id)
    t.ok(tenant.port >= port + 3 && tenant.port < port + blockSize, `the tenant's port ${tenant.port} is in the Machine's own range`)
    ports.push(port, standalone.port, ownPort.port, tenant.port)
  }
  t.equal(new Set(ports).size, 8, 'no port is shared between the Machines')
  t.notOk(output.some((line) => /exited unexpectedly|in use by another process/.test(line)), 'no child crash-looped')
})
