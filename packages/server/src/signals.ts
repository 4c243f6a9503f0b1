import { ConfigError } from '@navigator/config'
import type { NavigatorServer } from './server.js'

/**
 * The signals of a running `navigator`: SIGHUP reloads the file, SIGTERM and SIGINT stop (a second one exits at
 * once). They are installed before anything starts: a SIGTERM or SIGINT during start-up must not kill Navigator by
 * default and orphan the children it has started, so it is honoured as soon as the step under way returns
 * (stopIfAsked: what was started is stopped, exit 0); a SIGHUP is held until Navigator listens.
 */
export class Signals {
  private navigator: NavigatorServer | null = null
  private up = false
  private stopping = false
  private hupWhileStarting = false
  private reloading: Promise<void> = Promise.resolve()

  constructor (private readonly file: string, private readonly problemLines: (err: unknown) => string[]) {
    process.on('SIGHUP', this.reload)
    process.on('SIGTERM', this.stop)
    process.on('SIGINT', this.stop)
  }

  /** The server is built: a stop asked for from now on closes it. */
  built (navigator: NavigatorServer): void {
    this.navigator = navigator
  }

  /** The server listens: signals act at once, and a SIGHUP that came during start-up is applied now. */
  listening (): void {
    this.up = true
    if (this.hupWhileStarting) {
      this.hupWhileStarting = false
      this.reload()
    }
  }

  /** A stop asked for during start-up: whatever was started is stopped, then exit 0. */
  async stopIfAsked (): Promise<void> {
    if (!this.stopping) return
    const navigator = this.navigator
    if (navigator !== null) {
      navigator.log.info('signal received during start-up: stopping')
      try {
        await navigator.close()
      } catch (err) {
        navigator.log.error({ err }, 'shutdown failed')
        process.exit(1)
      }
    }
    process.exit(0)
  }

  private readonly reload = (): void => {
    const running = this.navigator
    if (!this.up || running === null) {
      this.hupWhileStarting = true
      return
    }
    const log = running.log
    this.reloading = this.reloading.then(async () => {
      log.info({ file: this.file }, 'reloading configuration')
      try {
        // Read in its turn among reloads (a hook's or a CGI script's reload_config may be applying another).
        await running.reloadFile(this.file)
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err
        for (const line of this.problemLines(err)) log.error(line)
        log.error('configuration not reloaded: the previous one stays in effect')
      }
    }).catch((err: Error) => { log.error({ err }, 'reload failed: the previous configuration stays in effect') })
  }

  private readonly stop = (signal: NodeJS.Signals): void => {
    const running = this.navigator
    if (this.stopping) {
      if (running !== null) running.log.warn({ signal }, 'second signal: exiting without waiting')
      else process.stderr.write(`navigator: second ${signal}: exiting without waiting\n`)
      process.exit(1)
    }
    this.stopping = true
    // During start-up the start-up sequence itself stops (stopIfAsked).
    if (!this.up || running === null) return
    running.log.info({ signal }, 'signal received')
    running.close().then(() => { process.exit(0) }, (err: Error) => {
      running.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
}
