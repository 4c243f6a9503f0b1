import { canonicalYaml, ConfigError, configJsonSchema, formatProblem, loadConfig } from '@navigator/config'
import { readFile } from 'node:fs/promises'
import type { NavigatorConfig } from '@navigator/config'
import { CONTROL_SIGNALS, DEFAULT_PID_FILE, EXIT_NOT_RUNNING, pidFilePath, signalRunning, writePidFile, type ControlAction } from './pid-file.js'
import { Signals } from './signals.js'
import { navigatorVersion } from './version.js'

/** Config file used when none is given on the command line. */
export const DEFAULT_CONFIG_FILE = 'config/navigator.yml'
/** Exit status for an invalid configuration (or invalid usage). */
export const EXIT_CONFIG_ERROR = 2

const HELP = `Usage: navigator [config] [options]
       navigator schema
       navigator -s reload|stop

Runs Navigator with the YAML configuration in [config] (default ${DEFAULT_CONFIG_FILE}).

Commands:
  schema         print the JSON Schema of the configuration format
  -s reload      tell the running Navigator to reload its configuration (SIGHUP)
  -s stop        tell the running Navigator to stop (SIGTERM); exit 0 once sent,
                 1 when no Navigator runs (no pid file, or a stale one)

Options:
  --check        validate the configuration, print every problem, exit 0 (valid) or 2 (invalid)
  --check --print  the same, then print the configuration in this project's spelling
                 (a Go Navigator file translated), \${NAME} references kept
  --version      print the version
  --help         print this help

Environment:
  LOG_LEVEL      trace, debug, info, warn or error (default info)
  NAVIGATOR_UPSTREAM_TIMEOUT   wait for an app's response headers, then 504 (Go duration, default 60s)
  FLY_MACHINE_ID, FLY_APP_NAME, FLY_REGION   this Machine's identity (set by Fly.io)
  NAVIGATOR_PID_FILE   where a running Navigator writes its process id, read by -s (default ${DEFAULT_PID_FILE})

Signals:
  SIGHUP         reload the configuration (an invalid one is logged and the old one kept)
  SIGTERM/SIGINT drain in-flight requests up to server.shutdown_timeout, then stop
`

/** Every problem of a failed load, one line each (file:line:column: path: message). */
export function problemLines (err: unknown): string[] {
  if (err instanceof ConfigError) return err.message.split('\n').filter((line) => line !== '')
  return [(err as Error).message ?? String(err)]
}

interface Arguments {
  command: 'run' | 'check' | 'schema' | 'version' | 'help' | 'signal'
  file: string
  action: ControlAction | null
  print: boolean
}

function isControlAction (value: string | undefined): value is ControlAction {
  return value !== undefined && Object.hasOwn(CONTROL_SIGNALS, value)
}

function parseArguments (argv: string[]): Arguments | string {
  let command = 'run' as Arguments['command']
  let file: string | null = null
  let action: ControlAction | null = null
  let print = false
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]
    if (arg === '-s') {
      const value = argv[++index]
      if (!isControlAction(value)) return `-s takes reload or stop${value === undefined ? '' : `, not ${value}`}`
      action = value
      command = command === 'help' || command === 'version' ? command : 'signal'
    } else if (arg === '--help' || arg === '-h') command = 'help'
    else if (arg === '--version' || arg === '-v') command = 'version'
    else if (arg === '--check') command = command === 'run' ? 'check' : command
    else if (arg === '--print') print = true
    else if (arg === 'schema' && file === null && command === 'run') command = 'schema'
    else if (arg.startsWith('-')) return `unknown option ${arg}`
    else if (file === null) file = arg
    else return `unexpected argument ${arg}`
  }
  if (print && command !== 'check' && command !== 'help' && command !== 'version') return '--print goes with --check'
  return { command, file: file ?? DEFAULT_CONFIG_FILE, action, print }
}

/** Deprecated forms of the file, one line each, as `file:line:column: path: warning: ...`. */
function warningLines (config: NavigatorConfig): string[] {
  return config.warnings.map((warning) => formatProblem({ ...warning, message: `warning: ${warning.message}` }))
}

async function run (file: string): Promise<void> {
  const signals = new Signals(file, problemLines)
  let config: NavigatorConfig
  try {
    config = await loadConfig(file, { launchPaths: true })
  } catch (err) {
    for (const line of problemLines(err)) process.stderr.write(line + '\n')
    process.exit(EXIT_CONFIG_ERROR)
  }
  for (const line of warningLines(config)) process.stderr.write(line + '\n')
  await signals.stopIfAsked()

  try {
    // Loaded only to serve, so --check, schema and --version start fast.
    const { buildServer } = await import('./server.js')
    const navigator = await buildServer(config)
    signals.built(navigator)
    // Written once the signals are handled: `navigator -s` must never reach a Navigator that would die of them.
    const pidWarning = writePidFile(pidFilePath())
    if (pidWarning !== null) navigator.log.warn(pidWarning)
    await signals.stopIfAsked()
    await navigator.listen()
  } catch (err) {
    process.stderr.write(`navigator: ${(err as Error).message}\n`)
    const code = (err as { code?: string }).code
    process.exit(code === 'NAV_SERVER_INVALID_LOG_LEVEL' || code === 'NAV_SERVER_INVALID_UPSTREAM_TIMEOUT' || code === 'NAV_SERVER_INVALID_CABLE_PING_INTERVAL' ? EXIT_CONFIG_ERROR : 1)
  }
  await signals.stopIfAsked()
  signals.listening()
}

export async function main (argv: string[]): Promise<void> {
  const args = parseArguments(argv)
  if (typeof args === 'string') {
    process.stderr.write(`navigator: ${args}\n\n${HELP}`)
    process.exit(EXIT_CONFIG_ERROR)
  }
  switch (args.command) {
    case 'help':
      process.stdout.write(HELP)
      return
    case 'version':
      process.stdout.write(navigatorVersion() + '\n')
      return
    case 'schema':
      process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n')
      return
    case 'check':
      try {
        const config = await loadConfig(args.file, { launchPaths: true })
        for (const line of warningLines(config)) process.stderr.write(line + '\n')
        if (args.print) {
          process.stdout.write(canonicalYaml(await readFile(args.file, 'utf8'), { file: args.file }))
          return
        }
      } catch (err) {
        for (const line of problemLines(err)) process.stderr.write(line + '\n')
        process.exit(EXIT_CONFIG_ERROR)
      }
      process.stdout.write(`${args.file}: ok\n`)
      return
    case 'signal': {
      const sent = signalRunning(pidFilePath(), args.action as ControlAction)
      if (!sent.ok) {
        process.stderr.write(`navigator: ${sent.message}\n`)
        process.exit(EXIT_NOT_RUNNING)
      }
      process.stdout.write(sent.message + '\n')
      return
    }
    case 'run':
      await run(args.file)
  }
}

await main(process.argv.slice(2))
