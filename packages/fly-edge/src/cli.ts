#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { checkEdgeConfig } from './check.js'
import { DEFAULT_APP, DEFAULT_EDGE_PORT, startLocalFly, stopOnSignals } from './local-fly.js'
import { parseReplayCacheRule, type ReplayCacheRule } from './replay-cache.js'

const HELP = `Usage: fly-edge --config <navigator.yml> [options]
       fly-edge --check --config <navigator.yml> [--machines <n>] [--app <name>] [--regions <list>]

A local stand-in for Fly.io's edge proxy: launches N navigator processes as the
Machines of one app and balances requests over them, honouring fly-replay.

Options:
  --config <file>     Navigator config every Machine runs, as it is: each Machine gets
                      a copy with its own listen, tenant and standalone server ports,
                      and its own data folder in NAVIGATOR_DATA
  --machines <n>      number of Machines (default 3)
  --port <port>       edge port (default ${DEFAULT_EDGE_PORT})
  --host <host>       edge address (default 127.0.0.1)
  --app <name>        FLY_APP_NAME of the Machines (default ${DEFAULT_APP})
  --regions <list>    FLY_REGION of the Machines in turn, e.g. iad,ord,ams (default iad)
  --no-autostart      do not start stopped Machines for requests
  --replay-cache <rule>
                      session-based replay caching, like fly.toml's
                      [[http_service.http_options.replay_cache]], with its key names:
                      path_prefix=/,ttl_seconds=300,type=cookie,name=<cookie>[,allow_bypass=true]
                      (type=header keys on a request header); repeat for more rules
  --check             check the config as each Machine would run it, with the edge's
                      variables (NAVIGATOR_PORT, NAVIGATOR_DATA, FLY_*) set and its ports
                      moved; print every problem as navigator --check does; exit 0
                      (valid) or 2 (invalid); start nothing
  --verbose           print routing decisions and all Machine output (without it:
                      the Machines' warnings and errors)
  --help              print this help
`

// As navigator's: a usage or config problem.
const EXIT_CONFIG_ERROR = 2

function fail (message: string): never {
  process.stderr.write(`fly-edge: ${message}\n\n${HELP}`)
  process.exit(EXIT_CONFIG_ERROR)
}

async function main (): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      options: {
        config: { type: 'string' },
        machines: { type: 'string', default: '3' },
        port: { type: 'string', default: String(DEFAULT_EDGE_PORT) },
        host: { type: 'string', default: '127.0.0.1' },
        app: { type: 'string', default: DEFAULT_APP },
        regions: { type: 'string' },
        'no-autostart': { type: 'boolean', default: false },
        'replay-cache': { type: 'string', multiple: true, default: [] },
        check: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false }
      }
    })
  } catch (err) {
    fail((err as Error).message)
  }
  const { values } = parsed
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  if (values.config === undefined) fail('--config is required')
  const machines = Number(values.machines)
  const port = Number(values.port)
  if (!Number.isInteger(machines) || machines < 1) fail('--machines must be a whole number >= 1')
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('--port must be a port number')
  const regions = values.regions?.split(',').map((r) => r.trim()).filter(Boolean)
  if (values.check) {
    const { problems, warnings } = await checkEdgeConfig({ config: values.config, machines, app: values.app, regions })
    for (const line of [...warnings, ...problems]) process.stderr.write(line + '\n')
    if (problems.length > 0) process.exit(EXIT_CONFIG_ERROR)
    process.stdout.write(`${values.config}: ok for ${machines} Machine${machines === 1 ? '' : 's'} behind the edge\n`)
    return
  }
  let replayCache: ReplayCacheRule[]
  try {
    replayCache = values['replay-cache'].map(parseReplayCacheRule)
  } catch (err) {
    fail(`--replay-cache: ${(err as Error).message}`)
  }
  const write = (line: string): void => { process.stdout.write(line + '\n') }
  const fly = await startLocalFly({
    config: values.config,
    machines,
    port,
    host: values.host,
    app: values.app,
    regions,
    autostart: !values['no-autostart'],
    replayCache,
    verbose: values.verbose
  })
  stopOnSignals(fly, write)
  write(`fly-edge listening on ${fly.url} for app ${values.app}`)
  write(`  Flycast (${values.app}.flycast) at ${fly.edge.flycastUrl()}`)
  for (const machine of fly.launched.machines) {
    write(`  Machine ${machine.id} (${machine.region}) at ${machine.url}, private address ${fly.edge.privateUrl(machine.id)}, ` +
      `NAVIGATOR_DATA ${fly.launched.dataDirs[machine.id]}`)
  }
}

main().catch((err: Error) => {
  process.stderr.write(`fly-edge: ${err.message}\n`)
  process.exit(1)
})
