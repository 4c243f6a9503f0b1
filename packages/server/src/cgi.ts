import { spawn, type ChildProcess } from 'node:child_process'
import type { IncomingMessage } from 'node:http'
import { createInterface } from 'node:readline'
import createError from '@fastify/error'
import type { FastifyBaseLogger } from 'fastify'
import type { CgiScriptConfig } from '@navigator/config'
import { answerError, hasBody, pendingResponseHeaders, type RequestContext } from '@navigator/proxy'
import { HOOK_KILL_GRACE_MS, reloadConfigAfter, type ReloadConfig } from '@navigator/supervisor'

// A CGI/1.1 host (RFC 3875) for server.cgi_scripts: the request becomes the script's environment and stdin, the
// script's output its answer, streamed. Written here rather than taken from npm: `cgi` (node-cgi) was last released
// in 2012, and neither it nor `cgi-core` (which serves a folder of scripts by URL) kills a script's whole process
// group on a timeout or when the client goes away, runs a script as another user, or answers through a Fastify
// reply; see the server's README.

/** The script wrote no valid CGI header block (or ended before it). */
export const CgiBadOutputError = createError<'NAV_SERVER_CGI_BAD_OUTPUT', 502, [string]>('NAV_SERVER_CGI_BAD_OUTPUT', 'The CGI script gave no valid answer: %s', 502)
/** The script could not be started. */
export const CgiStartError = createError<'NAV_SERVER_CGI_START', 502, [string]>('NAV_SERVER_CGI_START', 'The CGI script could not be started: %s', 502)
/** The script ran past its timeout before it wrote its headers. */
export const CgiTimeoutError = createError<'NAV_SERVER_CGI_TIMEOUT', 504, [number]>('NAV_SERVER_CGI_TIMEOUT', 'The CGI script did not answer within its timeout of %d ms', 504)

/** The most a script's header block may take; beyond it the output is not a CGI answer. */
export const CGI_MAX_HEADER_BYTES = 64 * 1024

/** Request headers that never become HTTP_* variables: the body's own (CONTENT_*), the password, httpoxy's Proxy. */
const NOT_PASSED = new Set(['content-type', 'content-length', 'authorization', 'proxy-authorization', 'proxy'])
/** Response headers of the script that are the connection's business, not the script's. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'status'])
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// eslint-disable-next-line no-control-regex
const HEADER_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/
const STATUS = /^([1-5]\d\d)(?:\s.*)?$/

/** Script process groups still running: killed if Navigator exits first. */
const running = new Set<number>()
let safetyNetInstalled = false

function killGroup (pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: the group is gone already.
  }
}

export interface CgiRun {
  script: CgiScriptConfig
  /** Navigator's environment, under the CGI variables and the script's `env`. */
  env: NodeJS.ProcessEnv
  /** The folder the script runs in (the config file's). */
  cwd: string
  /** The port Navigator listens on (SERVER_PORT). */
  port: number
  /** The user `auth` verified, or null (REMOTE_USER). */
  remoteUser: string | null
  version: string
  reload: ReloadConfig
  log: FastifyBaseLogger
}

/** The CGI meta-variables of a request (RFC 3875 section 4.1), with its headers as HTTP_*. */
export function cgiEnvironment (req: IncomingMessage, run: Omit<CgiRun, 'env' | 'cwd' | 'reload' | 'log'>): Record<string, string> {
  const url = req.url ?? '/'
  const query = url.indexOf('?')
  const host = req.headers.host ?? ''
  const env: Record<string, string> = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    SERVER_SOFTWARE: `Navigator/${run.version}`,
    SERVER_NAME: host.replace(/:\d*$/, '').replace(/^\[|\]$/g, '') || 'localhost',
    SERVER_PORT: String(run.port),
    REQUEST_METHOD: req.method ?? 'GET',
    REQUEST_URI: url,
    QUERY_STRING: query === -1 ? '' : url.slice(query + 1),
    SCRIPT_NAME: run.script.path,
    SCRIPT_FILENAME: run.script.script,
    PATH_INFO: '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    REMOTE_PORT: String(req.socket.remotePort ?? '')
  }
  if (req.headers['content-type'] !== undefined) env.CONTENT_TYPE = req.headers['content-type']
  if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length']
  if (run.remoteUser !== null) {
    env.AUTH_TYPE = 'Basic'
    env.REMOTE_USER = run.remoteUser
  }
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    // A name with "_" would share its variable with the "-" spelling (X_User and X-User): it is left out, as nginx does.
    if (NOT_PASSED.has(name) || name.includes('_')) continue
    const key = 'HTTP_' + name.toUpperCase().replace(/-/g, '_')
    env[key] = env[key] === undefined ? raw[i + 1] : `${env[key]}, ${raw[i + 1]}`
  }
  return env
}

interface ParsedHeaders {
  status: number
  /** [name, value, ...] as writeHead takes them. */
  headers: string[]
}

/** A script's header block (without its blank line); a string saying what is wrong with it otherwise. */
export function parseCgiHeaders (block: string): ParsedHeaders | string {
  const headers: string[] = []
  let status: number | null = null
  let location = false
  const lines = block.split(/\r?\n/)
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) return `the header line ${JSON.stringify(line.slice(0, 80))} is not "Name: value"`
    const name = line.slice(0, colon).trim()
    const value = line.slice(colon + 1).trim()
    if (!HEADER_NAME.test(name)) return `${JSON.stringify(name.slice(0, 80))} is not a header name`
    if (!HEADER_VALUE.test(value)) return `the value of ${name} holds a control character`
    const lower = name.toLowerCase()
    if (lower === 'status') {
      const match = STATUS.exec(value)
      if (match === null || Number(match[1]) < 200) return `Status ${JSON.stringify(value.slice(0, 80))} is not a status code from 200 to 599`
      status = Number(match[1])
    } else if (lower === 'location') location = true
    if (!HOP_BY_HOP.has(lower)) headers.push(lower, value)
  }
  return { status: status ?? (location ? 302 : 200), headers }
}

/**
 * Runs one script for the request and answers it. Resolves when the answer is over: sent, failed, or abandoned by
 * the client (the script is then killed, with its whole process group). Never rejects.
 */
export function runCgi (ctx: RequestContext, run: CgiRun): Promise<void> {
  return new Promise((resolve) => { new CgiExchange(ctx, run, resolve).start() })
}

/** The header block ends at the first blank line: "\n\n", "\r\n\r\n", or a mix of them. */
const HEADER_END = /\r?\n\r?\n/

class CgiExchange {
  private child: ChildProcess | null = null
  private head: Buffer[] = []
  private headBytes = 0
  private answered = false
  private over = false
  private timer: NodeJS.Timeout | null = null
  private readonly startedAt = Date.now()
  private readonly log: FastifyBaseLogger

  constructor (private readonly ctx: RequestContext, private readonly run: CgiRun, private readonly done: () => void) {
    this.log = run.log
  }

  start (): void {
    const { ctx, run } = this
    const { script } = run
    const env = { ...run.env, ...cgiEnvironment(ctx.req, { script, port: run.port, remoteUser: run.remoteUser, version: run.version }), ...script.env }
    let child: ChildProcess
    try {
      child = spawn(script.script, [], {
        cwd: run.cwd,
        env,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(script.uid === null ? {} : { uid: script.uid }),
        ...(script.gid === null ? {} : { gid: script.gid })
      })
    } catch (err) {
      this.startFailed(err as Error)
      return
    }
    this.child = child
    const onError = (err: Error): void => { this.startFailed(err) }
    child.once('error', onError)
    child.once('spawn', () => {
      child.removeListener('error', onError)
      // A later error (a failed kill) must not crash Navigator; the end is observed through 'close'.
      child.on('error', () => {})
      this.spawned(child)
    })
  }

  private spawned (child: ChildProcess): void {
    const { ctx, run } = this
    const pid = child.pid as number
    if (!safetyNetInstalled) {
      safetyNetInstalled = true
      process.on('exit', () => { for (const group of running) killGroup(group, 'SIGKILL') })
    }
    running.add(pid)
    this.log.debug({ cgi: run.script.path, pid }, 'CGI script started')
    const clientGone = (): void => {
      if (this.over) return
      this.log.info({ cgi: run.script.path, pid }, 'client went away: the CGI script is stopped')
      this.kill()
    }
    // The client may have gone while the script was being started.
    if (ctx.res.closed || ctx.res.destroyed) clientGone()
    else ctx.res.once('close', clientGone)
    if (run.script.timeoutMs > 0) this.timer = setTimeout(() => { this.timeout() }, run.script.timeoutMs)
    const stdin = child.stdin as NodeJS.WritableStream
    // A script that exits without reading its stdin: the rest of the body is dropped (EPIPE is not an error here).
    stdin.on('error', () => {})
    if (hasBody(ctx.req.headers)) ctx.req.pipe(stdin)
    else stdin.end()
    createInterface({ input: child.stderr as NodeJS.ReadableStream, crlfDelay: Infinity })
      .on('line', (line) => { this.log.warn({ cgi: run.script.path, output: 'stderr' }, line) })
    const stdout = child.stdout as NodeJS.ReadableStream & { destroy: () => void }
    stdout.on('data', (chunk: Buffer) => { this.output(chunk) })
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => { void this.closed(code, signal) })
  }

  private startFailed (err: Error): void {
    if (this.over) return
    this.log.error({ cgi: this.run.script.path, script: this.run.script.script, err: err.message }, 'CGI script could not be started')
    this.fail(new CgiStartError((err as NodeJS.ErrnoException).code ?? err.message))
  }

  /** Output before the header block ends is kept until it does; after it, it goes to the client. */
  private output (chunk: Buffer): void {
    if (this.over) return
    if (this.answered) {
      if (!this.ctx.res.write(chunk)) {
        const stdout = this.child?.stdout
        stdout?.pause()
        this.ctx.res.once('drain', () => { stdout?.resume() })
      }
      return
    }
    this.head.push(chunk)
    this.headBytes += chunk.length
    const text = Buffer.concat(this.head).toString('latin1')
    const end = HEADER_END.exec(text)
    if (end === null) {
      if (this.headBytes > CGI_MAX_HEADER_BYTES) this.badOutput(`its headers are longer than ${CGI_MAX_HEADER_BYTES} bytes`)
      return
    }
    const parsed = parseCgiHeaders(text.slice(0, end.index))
    if (typeof parsed === 'string') {
      this.badOutput(parsed)
      return
    }
    this.writeHead(parsed, Buffer.concat(this.head).subarray(end.index + end[0].length))
  }

  private writeHead (parsed: ParsedHeaders, body: Buffer): void {
    const { ctx } = this
    const pending = pendingResponseHeaders(ctx)
    const headers: string[] = []
    const own = new Set<string>()
    for (let i = 0; i < parsed.headers.length; i += 2) own.add(parsed.headers[i])
    if (pending !== null) {
      for (const name in pending) {
        const value = pending[name]
        if (own.has(name) || value === undefined) continue
        if (Array.isArray(value)) for (const each of value) headers.push(name, String(each))
        else headers.push(name, String(value))
      }
    }
    headers.push(...parsed.headers)
    try {
      ctx.res.writeHead(parsed.status, headers)
    } catch (err) {
      this.badOutput(`a header Node refuses to send (${(err as Error).message})`)
      return
    }
    this.answered = true
    this.head = []
    ctx.reply?.hijack()
    if (body.length > 0) this.output(body)
  }

  private badOutput (reason: string): void {
    if (this.over) return
    this.log.error({ cgi: this.run.script.path, reason }, 'CGI script gave no valid answer')
    this.fail(new CgiBadOutputError(reason))
    this.kill()
  }

  private timeout (): void {
    this.timer = null
    if (this.over) return
    this.log.error({ cgi: this.run.script.path, timeoutMs: this.run.script.timeoutMs }, 'CGI script ran past its timeout: stopped')
    if (this.answered) this.ctx.res.destroy()
    else this.fail(new CgiTimeoutError(this.run.script.timeoutMs))
    this.kill()
  }

  private async closed (code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    const pid = this.child?.pid as number
    // Whatever the script left running in its group goes with it.
    killGroup(pid, 'SIGKILL')
    running.delete(pid)
    if (this.timer !== null) clearTimeout(this.timer)
    // A body the script did not read is read and dropped, so that a kept-alive connection can take the next request.
    const req = this.ctx.req
    if (!req.complete && !req.destroyed) {
      req.unpipe()
      req.resume()
    }
    if (this.over) {
      this.done()
      return
    }
    const { script } = this.run
    const ms = Date.now() - this.startedAt
    if (!this.answered) {
      this.badOutput(this.headBytes === 0 ? `it wrote nothing (exit ${signal ?? String(code)})` : `it ended before the blank line after its headers (exit ${signal ?? String(code)})`)
      this.done()
      return
    }
    if (code === 0) {
      this.log.debug({ cgi: script.path, ms }, 'CGI script done')
      // The answer ends once the new configuration is in effect: the client's next request sees it.
      if (script.reloadConfig !== null) await reloadConfigAfter(script.reloadConfig, this.startedAt, this.run.reload, this.log.child({ cgi: script.path }), 'script')
    } else {
      this.log.warn({ cgi: script.path, ms, exit: signal ?? code }, 'CGI script failed after its headers were sent')
    }
    this.over = true
    this.ctx.res.end()
    this.done()
  }

  /** An error answer before any header left (through Fastify when it owns the reply). */
  private fail (err: Error): void {
    this.over = true
    if (!this.ctx.res.headersSent) answerError(this.ctx, err)
    else this.ctx.res.destroy()
    if (this.child === null || this.child.pid === undefined) this.done()
  }

  /** SIGTERM to the script's process group, SIGKILL to what is left of it after HOOK_KILL_GRACE_MS. */
  private kill (): void {
    this.over = true
    const child = this.child
    if (child === null || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    const pid = child.pid
    killGroup(pid, 'SIGTERM')
    setTimeout(() => { killGroup(pid, 'SIGKILL') }, HOOK_KILL_GRACE_MS).unref()
  }
}
