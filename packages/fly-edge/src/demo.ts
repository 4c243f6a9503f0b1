#!/usr/bin/env node
// `npm run demo`: the local edge with three Navigator Machines running examples/demo (sticky sessions on `/app/*`
// and `/cable`, a tenant page naming its Machine, a WebSocket on the same Machine).
import { fileURLToPath } from 'node:url'
import { DEFAULT_APP, DEFAULT_EDGE_PORT, startLocalFly, stopOnSignals } from './local-fly.js'

export const DEMO_CONFIG = fileURLToPath(new URL('../../../examples/demo/navigator.yml', import.meta.url))
export const DEMO_REGIONS = ['iad', 'ord', 'ams']

const write = (line: string): void => { process.stdout.write(line + '\n') }
const portArgument = process.argv.indexOf('--port')
const port = Number(portArgument === -1 ? (process.env.PORT ?? DEFAULT_EDGE_PORT) : process.argv[portArgument + 1])

startLocalFly({
  config: DEMO_CONFIG,
  machines: 3,
  app: DEFAULT_APP,
  regions: DEMO_REGIONS,
  port,
  verbose: process.argv.includes('--verbose')
}).then((fly) => {
  stopOnSignals(fly, write)
  write(`Navigator demo: open ${fly.url}/app/`)
  write('Three Machines run behind a local Fly edge; a sticky-session cookie keeps your browser (and its WebSocket) on one of them. Ctrl-C stops everything.')
}, (err: Error) => {
  process.stderr.write(`demo: ${err.message}\n`)
  process.exit(1)
})
