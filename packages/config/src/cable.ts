// `cable`, the Go Navigator's TurboCable hub: its two paths, checked against each other and against Navigator's
// other own paths.

import { DEFAULT_CABLE_BROADCAST_PATH, DEFAULT_CABLE_ENABLED, DEFAULT_CABLE_PATH } from './defaults.js'
import type { KeyPath, ProblemCollector } from './problems.js'
import type { CableConfig, ServerConfig } from './types.js'

const URL_PATH = /^\/[^\s?#]*$/

export function normaliseCable (cable: Record<string, unknown>, server: ServerConfig, problems: ProblemCollector): CableConfig {
  const at = ['cable']
  const path = pathOf(cable.path, DEFAULT_CABLE_PATH, [...at, 'path'], problems)
  const broadcastPath = pathOf(cable.broadcast_path, DEFAULT_CABLE_BROADCAST_PATH, [...at, 'broadcast_path'], problems)
  const enabled = typeof cable.enabled === 'boolean' ? cable.enabled : DEFAULT_CABLE_ENABLED
  if (path === broadcastPath) {
    problems.add([...at, 'broadcast_path'], `${broadcastPath} is cable.path already: give the broadcasts a path of their own (the default is ${DEFAULT_CABLE_BROADCAST_PATH})`)
  }
  if (enabled) {
    const taken: Array<[string | null | undefined, string]> = [
      [server.healthCheck, 'server.health_check'],
      [server.metrics?.path, 'server.metrics.path'],
      [server.status?.path, 'server.status.path'],
      [server.status === null ? null : `${server.status.path}.json`, 'the JSON of server.status']
    ]
    for (const [key, own] of [['path', path], ['broadcast_path', broadcastPath]] as const) {
      for (const [other, name] of taken) {
        if (other === own) problems.add([...at, key], `${own} is ${name} already: choose another path for cable.${key}`)
      }
    }
  }
  return { enabled, path, broadcastPath }
}

function pathOf (value: unknown, fallback: string, at: KeyPath, problems: ProblemCollector): string {
  if (typeof value !== 'string') return fallback
  if (!URL_PATH.test(value)) problems.add(at, 'must be a URL path starting with "/" (no spaces, "?" or "#"), such as ' + fallback)
  return value
}
