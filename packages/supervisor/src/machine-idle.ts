import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { IdleAction } from '@navigator/config'
import { InvalidOptionError } from './errors.js'
import type { SupervisorLogger } from './logger.js'

export interface MachineIdleOptions {
  action: IdleAction
  timeoutMs: number
  /** Unix socket of the Machines API; `/.fly/api` on Fly. */
  apiSocket: string
  appName: string
  machineId: string
  logger: SupervisorLogger
  /** Awaited before the Machines API is called (the idle hooks); a request that arrives meanwhile cancels the call. */
  beforeIdle?: () => Promise<void>
}

/** The Machines API's default Unix socket on a Fly Machine. */
export const DEFAULT_API_SOCKET = '/.fly/api'
/** How long a call to the Machines API may take. */
export const MACHINES_API_TIMEOUT_MS = 10_000

interface ApiResponse {
  status: number
  body: string
}

/**
 * Asks Fly to suspend or stop this Machine once nothing has happened for `timeoutMs`: no request in
 * flight and no WebSocket open (the caller leaves health checks out: Fly polls them while the Machine
 * runs). Emits 'idle' { action } when it asks, 'accepted' { action, status } when the Machines API
 * accepted, and 'resumed' when activity returns after an accepted suspend (a suspended Machine resumes
 * exactly where it was, so the first request after it is how we notice). Activity while the call is
 * under way is not a resume: the Machine had not been suspended yet, or the call failed.
 */
export class MachineIdle extends EventEmitter {
  private readonly action: IdleAction
  private readonly timeoutMs: number
  private readonly apiSocket: string
  private readonly path: string
  private readonly logger: SupervisorLogger
  private readonly beforeIdle: (() => Promise<void>) | null
  private inFlight = 0
  private webSockets = 0
  private timer: NodeJS.Timeout | null = null
  private running = false
  private idle = false
  /** A call to the Machines API is under way. */
  private asking = false

  constructor (options: MachineIdleOptions) {
    super()
    if (options.action !== 'suspend' && options.action !== 'stop') throw new InvalidOptionError(`action must be "suspend" or "stop", got ${JSON.stringify(options.action)}`)
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) throw new InvalidOptionError(`timeoutMs must be a positive number of milliseconds, got ${String(options.timeoutMs)}`)
    if (typeof options.apiSocket !== 'string' || options.apiSocket === '') throw new InvalidOptionError('apiSocket must be the path of a Unix socket')
    if (typeof options.appName !== 'string' || options.appName === '') throw new InvalidOptionError('appName must be a non-empty string (FLY_APP_NAME)')
    if (typeof options.machineId !== 'string' || options.machineId === '') throw new InvalidOptionError('machineId must be a non-empty string (FLY_MACHINE_ID)')
    this.action = options.action
    this.timeoutMs = options.timeoutMs
    this.apiSocket = options.apiSocket
    this.path = `/v1/apps/${encodeURIComponent(options.appName)}/machines/${encodeURIComponent(options.machineId)}/${options.action}`
    this.logger = options.logger
    this.beforeIdle = options.beforeIdle ?? null
  }

  start (): void {
    this.running = true
    this.arm()
  }

  stop (): void {
    this.running = false
    this.disarm()
  }

  requestStarted (): void {
    this.inFlight++
    this.activity()
  }

  requestFinished (): void {
    if (this.inFlight > 0) this.inFlight--
    this.arm()
  }

  webSocketOpened (): void {
    this.webSockets++
    this.activity()
  }

  webSocketClosed (): void {
    if (this.webSockets > 0) this.webSockets--
    this.arm()
  }

  private activity (): void {
    this.disarm()
    if (!this.idle || this.asking) return
    this.idle = false
    if (this.action === 'suspend') {
      this.logger.info({ action: this.action }, 'machine resumed')
      this.emit('resumed')
    }
  }

  private arm (): void {
    if (!this.running || this.idle || this.asking || this.timer !== null || this.inFlight > 0 || this.webSockets > 0) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.goIdle()
    }, this.timeoutMs)
    this.timer.unref()
  }

  private disarm (): void {
    if (this.timer === null) return
    clearTimeout(this.timer)
    this.timer = null
  }

  private async goIdle (): Promise<void> {
    // Checked again right before the call, synchronously with it: nothing may start in between.
    if (!this.running || this.asking || this.inFlight > 0 || this.webSockets > 0) return
    // Marked idle before the call (nothing re-arms the timer), but a resume is reported only after the API
    // accepted: a request arriving while the call is under way finds `asking` set and is no resume.
    this.idle = true
    this.asking = true
    this.logger.info({ action: this.action, timeoutMs: this.timeoutMs }, `machine idle; asking Fly to ${this.action} it`)
    this.emit('idle', { action: this.action })
    try {
      if (!await this.stillIdleAfterHooks()) return
      const response = await this.callApi()
      if (response.status >= 200 && response.status < 300) {
        this.asking = false
        this.logger.info({ action: this.action, status: response.status }, `machine ${this.action} accepted`)
        this.emit('accepted', { action: this.action, status: response.status })
        return
      }
      this.logger.error({ action: this.action, status: response.status, body: response.body.slice(0, 500) }, `machine ${this.action} refused by the Machines API`)
    } catch (err) {
      this.logger.error({ action: this.action, err, apiSocket: this.apiSocket }, `machine ${this.action} failed: Machines API unreachable`)
    }
    // The Machine keeps running: count idleness again from now.
    this.asking = false
    this.idle = false
    this.arm()
  }

  /** False when activity came while the idle hooks ran: the Machine stays up and idleness counts again. */
  private async stillIdleAfterHooks (): Promise<boolean> {
    if (this.beforeIdle === null) return true
    try {
      await this.beforeIdle()
    } catch (err) {
      this.logger.error({ err }, 'idle hooks failed')
    }
    if (this.running && this.inFlight === 0 && this.webSockets === 0) return true
    this.logger.info({ action: this.action }, `activity during the idle hooks; not asking Fly to ${this.action} the Machine`)
    this.asking = false
    this.idle = false
    this.arm()
    return false
  }

  private callApi (): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const request = http.request({
        socketPath: this.apiSocket,
        method: 'POST',
        path: this.path,
        headers: { host: 'flaps', 'content-length': '0' },
        timeout: MACHINES_API_TIMEOUT_MS
      }, (response) => {
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => { body += chunk })
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body }))
        response.once('error', reject)
      })
      request.once('timeout', () => request.destroy(new Error(`no answer within ${MACHINES_API_TIMEOUT_MS} ms`)))
      request.once('error', reject)
      request.end()
    })
  }
}
