// The copy of a config one Machine runs. On Fly every Machine has the whole computer to itself; here they share one,
// so each copy gets its own listen port, tenant ports and standalone server ports, and the sticky-session block learns
// its peers. Everything else stays as the user wrote it: the same file runs under the edge, alone and on Fly.

import { ConfigError, environmentLookup, parseConfig, substitute, type NavigatorConfig } from '@navigator/config'
import { NAV_FLY_EDGE_INVALID_OPTION, NAV_FLY_EDGE_LAUNCH_FAILED } from './errors.js'
import { startsWith, yamlValues, type YamlSegment, type YamlValue } from './yaml-lines.js'

/** The smallest block of ports a Machine gets: its listen port, then `${NAVIGATOR_PORT+1}` to `${NAVIGATOR_PORT+9}`. */
export const PORTS_PER_MACHINE = 10
/** Ports of a Machine's tenant range beyond one per tenant: a restarted tenant may find its old port still held. */
export const SPARE_TENANT_PORTS = 4

const PORT_REFERENCE = /\$\{NAVIGATOR_PORT(?:\+(\d))?\}/g
// A value that mentions ${NAVIGATOR_PORT} in any form already differs between Machines: it is left as it is.
const DERIVED_FROM_PORT = '${NAVIGATOR_PORT'
const STICKY = ['routes', 'fly', 'sticky_sessions']
const APPLICATIONS = ['applications']
const START_PORT = ['applications', 'start_port']
const STANDALONE = ['applications', 'standalone_servers']

/** Where each of a Machine's ports lies in its block: the same for every Machine of one config. */
export interface PortPlan {
  /** Ports per Machine: PORTS_PER_MACHINE, or more when the tenant range needs them. */
  blockSize: number
  /** Offset of `applications.start_port`; null when the file derives it from `${NAVIGATOR_PORT}` or has no `applications`. */
  startPort: number | null
  /** Offset of the port of each standalone server with a fixed port, by its index in `applications.standalone_servers`. */
  standalone: Map<number, number>
}

export interface MachineConfigOptions {
  /** Written as `flycast_url` when the sticky-session block says `direct_proxy: flycast` without one. */
  flycastUrl?: string
  /** Resolves `${NAME}` in `server.listen` to find its host; default `process.env`. */
  env?: NodeJS.ProcessEnv
}

function samePath (path: YamlSegment[], expected: YamlSegment[]): boolean {
  return path.length === expected.length && startsWith(path, expected)
}

function standaloneIndex (value: YamlValue): number | null {
  return value.path.length === 4 && startsWith(value.path, STANDALONE) && value.path[3] === 'port' ? value.path[2] as number : null
}

/** The offsets of `${NAVIGATOR_PORT}` (0) and `${NAVIGATOR_PORT+N}` (N) used anywhere in the text. */
function derivedOffsets (text: string): number[] {
  return [...text.matchAll(PORT_REFERENCE)].map((match) => Number(match[1] ?? 0))
}

/**
 * Lays out a Machine's block: the listen port first, the offsets the file names with `${NAVIGATOR_PORT+N}` as they
 * are, then one port per standalone server with a fixed port, then the tenant range (`start_port`) to the block's
 * end, one port per tenant and SPARE_TENANT_PORTS more.
 */
export function planPorts (base: string): PortPlan {
  const values = yamlValues(base)
  const used = new Set([0, ...derivedOffsets(base)])
  const standalone = new Map<number, number>()
  for (const value of values) {
    const index = standaloneIndex(value)
    if (index === null || value.text.includes(DERIVED_FROM_PORT)) continue
    let offset = 1
    while (used.has(offset)) offset++
    used.add(offset)
    standalone.set(index, offset)
  }
  const tenants = new Set(values.filter((v) => startsWith(v.path, [...APPLICATIONS, 'tenants']) && typeof v.path[2] === 'number').map((v) => v.path[2])).size
  const written = values.find((v) => samePath(v.path, START_PORT))
  const highest = Math.max(...used)
  let startPort: number | null = null
  let tenantRangeEnd = 0
  if (written?.text.includes(DERIVED_FROM_PORT) === true) {
    tenantRangeEnd = Math.max(0, ...derivedOffsets(written.text)) + tenants + SPARE_TENANT_PORTS
  } else if (values.some((v) => v.path[0] === APPLICATIONS[0])) {
    startPort = highest + 1
    tenantRangeEnd = startPort + tenants + SPARE_TENANT_PORTS
  }
  return { blockSize: Math.max(PORTS_PER_MACHINE, highest + 1, tenantRangeEnd), startPort, standalone }
}

/** The text of a YAML scalar as written: quotes removed (double-quoted escapes read as JSON's). */
function scalarText (written: string): string {
  if (/^".*"$/.test(written)) {
    try {
      return JSON.parse(written) as string
    } catch {
      return written.slice(1, -1)
    }
  }
  if (/^'.*'$/.test(written)) return written.slice(1, -1).replaceAll("''", "'")
  return written
}

/** `server.listen` moved to `port`, its host kept; a value without a host stays a bare port. */
function listenText (written: string, port: number, env: NodeJS.ProcessEnv): string {
  const resolved = substitute(scalarText(written), environmentLookup(env)).value.trim()
  const colon = resolved.lastIndexOf(':')
  if (/^\d+$/.test(resolved) || colon === 0) return String(port)
  if (colon === -1) return written
  return JSON.stringify(`${resolved.slice(0, colon)}:${port}`)
}

/** Changes to a text by line: values replaced in place, lines added after a line (-1: at the end). */
class LineEdits {
  private readonly replacements = new Map<number, Array<{ start: number, end: number, text: string }>>()
  private readonly additions = new Map<number, string[]>()

  replace (value: YamlValue, text: string): void {
    const list = this.replacements.get(value.line) ?? []
    list.push({ start: value.start, end: value.end, text })
    this.replacements.set(value.line, list)
  }

  addAfter (line: number, text: string): void {
    this.additions.set(line, [...this.additions.get(line) ?? [], text])
  }

  apply (text: string): string {
    const lines = text.split('\n')
    const out: string[] = []
    lines.forEach((line, index) => {
      let changed = line
      for (const { start, end, text } of (this.replacements.get(index) ?? []).sort((a, b) => b.start - a.start)) {
        changed = changed.slice(0, start) + text + changed.slice(end)
      }
      out.push(changed, ...this.additions.get(index) ?? [])
    })
    const atEnd = this.additions.get(-1) ?? []
    if (atEnd.length === 0) return out.join('\n')
    if (out[out.length - 1] === '') out.pop()
    return [...out, ...atEnd, ''].join('\n')
  }
}

/** The column of the first child of `parent`'s block, or two deeper than it. */
function childColumn (values: YamlValue[], parent: YamlValue): number {
  return values.find((v) => v.path.length === parent.path.length + 1 && startsWith(v.path, parent.path) && v.line > parent.line)?.column ?? parent.column + 2
}

function moveListen (values: YamlValue[], edits: LineEdits, port: number, env: NodeJS.ProcessEnv): void {
  const listen = values.find((v) => samePath(v.path, ['server', 'listen']))
  const server = values.find((v) => samePath(v.path, ['server']))
  if (listen !== undefined) edits.replace(listen, listenText(listen.text, port, env))
  else if (server !== undefined && server.text === '') edits.addAfter(server.line, `${' '.repeat(childColumn(values, server))}listen: ${port}`)
  else if (server === undefined) edits.addAfter(-1, `server:\n  listen: ${port}`)
}

function moveTenantRange (values: YamlValue[], edits: LineEdits, startPort: number): void {
  const written = values.find((v) => samePath(v.path, START_PORT))
  const applications = values.find((v) => samePath(v.path, APPLICATIONS))
  if (written !== undefined) edits.replace(written, String(startPort))
  else if (applications !== undefined && applications.text === '') {
    edits.addAfter(applications.line, `${' '.repeat(childColumn(values, applications))}start_port: ${startPort}`)
  }
}

// `${PORT}` in a standalone server's args and env: the server's own port. Navigator resolves it from its own
// environment when the file is loaded, which under the edge would be one PORT for every Machine's server.
const OWN_PORT_REFERENCE = /\$\{PORT(?::-[^}]*)?\}/g

/** The port a standalone server's `port` value names, `${NAVIGATOR_PORT...}` filled in for the Machine at `port`. */
function writtenPort (written: YamlValue, port: number, env: NodeJS.ProcessEnv): number {
  return Number(substitute(fillPortReferences(scalarText(written.text), port), environmentLookup(env)).value)
}

/**
 * A standalone server's `args` and `env` values on the Machine: its old port number (`before`, when the edge moved
 * the port) replaced by `port`, and every `${PORT}` (with or without a default) filled in with `port`.
 */
function fillStandaloneValues (values: YamlValue[], edits: LineEdits, index: number, before: number | null, port: number): void {
  const number = before === null ? null : new RegExp(`(?<![0-9])${before}(?![0-9])`, 'g')
  for (const value of values) {
    if (!startsWith(value.path, [...STANDALONE, index]) || (value.path[3] !== 'args' && value.path[3] !== 'env')) continue
    const changed = (number === null ? value.text : value.text.replace(number, String(port))).replace(OWN_PORT_REFERENCE, String(port))
    if (changed !== value.text) edits.replace(value, changed)
  }
}

/**
 * Each standalone server's port on the Machine at `port`: moved into the block as `plan` says (its `port` value
 * rewritten, the old number following it in `args` and `env`), or as written; `${PORT}` in its `args` and `env`
 * becomes that port either way.
 */
function placeStandalone (values: YamlValue[], edits: LineEdits, plan: PortPlan | null, port: number, env: NodeJS.ProcessEnv): void {
  for (const written of values) {
    const index = standaloneIndex(written)
    if (index === null) continue
    const before = writtenPort(written, port, env)
    const offset = plan?.standalone.get(index)
    if (offset === undefined) {
      if (Number.isInteger(before)) fillStandaloneValues(values, edits, index, null, before)
      continue
    }
    edits.replace(written, String(port + offset))
    fillStandaloneValues(values, edits, index, Number.isInteger(before) ? before : null, port + offset)
  }
}

function addPeers (values: YamlValue[], edits: LineEdits, peers: Record<string, string>, flycastUrl: string | undefined): void {
  const sticky = values.find((v) => samePath(v.path, STICKY))
  if (sticky === undefined || sticky.text !== '') return
  const indent = ' '.repeat(childColumn(values, sticky))
  edits.addAfter(sticky.line, `${indent}peers: ${JSON.stringify(peers)}`)
  const setting = (key: string): YamlValue | undefined => values.find((v) => samePath(v.path, [...STICKY, key]))
  const directProxy = setting('direct_proxy')
  if (flycastUrl !== undefined && directProxy !== undefined && scalarText(directProxy.text) === 'flycast' && setting('flycast_url') === undefined) {
    edits.addAfter(sticky.line, `${indent}flycast_url: ${JSON.stringify(flycastUrl)}`)
  }
}

/**
 * The config text the Machine whose block starts at `port` runs: `server.listen` on `port` (its host kept; added
 * when absent), `applications.start_port` and each standalone server's `port` (with the same number in its `args` and
 * `env`, and as `${PORT}` there) moved into the block as `planPorts` lays it out, `${NAVIGATOR_PORT}` and
 * `${NAVIGATOR_PORT+N}` filled in, and under routes.fly.sticky_sessions `peers` and, for `direct_proxy: flycast`
 * without a `flycast_url`, `flycast_url`.
 */
export function machineConfigText (base: string, port: number, peers: Record<string, string>, options: MachineConfigOptions = {}): string {
  const env = { ...options.env ?? process.env, NAVIGATOR_PORT: String(port) }
  const plan = planPorts(base)
  const values = yamlValues(base)
  const edits = new LineEdits()
  moveListen(values, edits, port, env)
  if (plan.startPort !== null) moveTenantRange(values, edits, port + plan.startPort)
  placeStandalone(values, edits, plan, port, env)
  addPeers(values, edits, peers, options.flycastUrl)
  return fillPortReferences(edits.apply(base), port)
}

function fillPortReferences (text: string, port: number): string {
  return text.replace(PORT_REFERENCE, (_ref, offset: string | undefined) => String(port + Number(offset ?? 0)))
}

/**
 * The user's file as the Machine at `port` reads it before the edge moves anything: `${NAVIGATOR_PORT}`,
 * `${NAVIGATOR_PORT+N}` and each standalone server's `${PORT}` filled in, every value on its own line, so that a
 * problem is reported at its line in the user's file.
 */
export function ownConfigText (base: string, port: number, env: NodeJS.ProcessEnv): string {
  const edits = new LineEdits()
  placeStandalone(yamlValues(base), edits, null, port, env)
  return fillPortReferences(edits.apply(base), port)
}

/** The config as Navigator loads it, or its problems as Navigator prints them (one a line). */
export function loadMachineConfig (text: string, file: string, env: NodeJS.ProcessEnv, launchPaths = false): NavigatorConfig | string {
  try {
    return parseConfig(text, { file, env, launchPaths })
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
}

/** The keys a Machine's copy should have moved into its block and did not (a flow mapping, say). */
export function unmovedPorts (copy: NavigatorConfig, port: number, plan: PortPlan): string[] {
  const unmoved: string[] = []
  if (copy.server.listen.port !== port) unmoved.push('server.listen')
  if (plan.startPort !== null && copy.applications.startPort !== port + plan.startPort) unmoved.push('applications.start_port')
  for (const [index, offset] of plan.standalone) {
    if (copy.applications.standaloneServers[index]?.port !== port + offset) unmoved.push(`applications.standalone_servers.${index}.port`)
  }
  return unmoved
}

export function unmovedMessage (file: string, unmoved: string[]): string {
  return `${file}: cannot give each Machine its own ${unmoved.join(', ')}: ` +
    'write each as a "key: value" line of a block mapping, or derive it from ${NAVIGATOR_PORT}'
}

export function invalidCopyMessage (file: string, problems: string): string {
  return `${file}: the Machine's copy of the config is not valid:\n${problems}`
}

/**
 * Checks a Machine's config before its process starts, with the Machine's environment: the base config's own problems
 * (at their lines in the user's file) fail the launch as Navigator would; a port the reader could not move (a flow
 * mapping, say) is an invalid option, never two Machines fighting over one port.
 */
export function checkMachineConfig (machine: { id: string, port: number, env: NodeJS.ProcessEnv }, base: string, text: string, file: string, plan: PortPlan): void {
  const own = loadMachineConfig(ownConfigText(base, machine.port, machine.env), file, machine.env)
  if (typeof own === 'string') throw new NAV_FLY_EDGE_LAUNCH_FAILED(machine.id, own)
  const copy = loadMachineConfig(text, file, machine.env)
  if (typeof copy === 'string') throw new NAV_FLY_EDGE_INVALID_OPTION(invalidCopyMessage(file, copy))
  const unmoved = unmovedPorts(copy, machine.port, plan)
  if (unmoved.length > 0) throw new NAV_FLY_EDGE_INVALID_OPTION(unmovedMessage(file, unmoved))
}
