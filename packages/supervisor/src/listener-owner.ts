import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import net from 'node:net'
import { groupMembers } from './process-group.js'

/** Who holds the listening socket that connections to `host:port` reach. */
export type ListenerOwner = 'ours' | 'other' | 'none'

const LISTEN_STATE = '0A'
const TABLES = ['/proc/net/tcp', '/proc/net/tcp6'] as const

/**
 * Linux: whether the listener on `host:port` belongs to a process of group `pgid` (our child or a process it
 * started), to another process, or to nobody. Null where the kernel's socket tables cannot be read (not Linux),
 * so the caller falls back to a plain connection probe.
 *
 * A TCP probe alone cannot tell our server from a stranger that holds the port; this reads the listening
 * sockets' inodes from /proc/net/tcp{,6} and looks for them among the group's open descriptors.
 */
export function listenerOwner (host: string, port: number, pgid: number): ListenerOwner | null {
  const inodes = listeningInodes(host, port)
  if (inodes === null) return null
  if (inodes.size === 0) return 'none'
  const members = groupMembers(pgid)
  if (members === null) return null
  for (const pid of members) {
    if (holdsAny(pid, inodes)) return 'ours'
  }
  return 'other'
}

/** Inodes of the sockets listening on `port` at `host` or at a wildcard address; null when /proc cannot be read. */
function listeningInodes (host: string, port: number): Set<string> | null {
  const wanted = addressBytes(host)
  const inodes = new Set<string>()
  let read = 0
  for (const table of TABLES) {
    let text: string
    try {
      text = readFileSync(table, 'latin1')
    } catch {
      continue
    }
    read++
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      if (fields.length < 10 || fields[3] !== LISTEN_STATE) continue
      const [address, portHex] = fields[1].split(':')
      if (Number.parseInt(portHex, 16) !== port) continue
      if (reaches(kernelAddressBytes(address), wanted)) inodes.add(fields[9])
    }
  }
  return read === 0 ? null : inodes
}

/** True when a listener bound to `bound` accepts connections to `wanted` (the same address, or a wildcard). */
function reaches (bound: number[], wanted: number[] | null): boolean {
  if (bound.every((byte) => byte === 0)) return true
  if (wanted === null) return false
  const left = asIPv6(bound)
  const right = asIPv6(wanted)
  return left.every((byte, i) => byte === right[i])
}

/** IPv4 addresses as IPv4-mapped IPv6 (::ffff:a.b.c.d), so that either table's entries compare with the host. */
function asIPv6 (bytes: number[]): number[] {
  return bytes.length === 16 ? bytes : [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...bytes]
}

/** The kernel writes each 32-bit word of an address in host (little-endian) order. */
function kernelAddressBytes (hex: string): number[] {
  const bytes: number[] = []
  for (let word = 0; word < hex.length; word += 8) {
    for (let i = 6; i >= 0; i -= 2) bytes.push(Number.parseInt(hex.slice(word + i, word + i + 2), 16))
  }
  return bytes
}

function addressBytes (host: string): number[] | null {
  if (net.isIPv4(host)) return host.split('.').map(Number)
  if (!net.isIPv6(host)) return host === 'localhost' ? [127, 0, 0, 1] : null
  const [head, tail = ''] = host.split('::')
  const groups = (part: string): number[] => part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16))
  const left = groups(head)
  const right = groups(tail)
  const words = host.includes('::') ? [...left, ...new Array(8 - left.length - right.length).fill(0), ...right] : left
  return words.flatMap((word) => [word >> 8, word & 0xff])
}

function holdsAny (pid: number, inodes: ReadonlySet<string>): boolean {
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return false
  }
  for (const fd of fds) {
    let link: string
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`)
    } catch {
      continue
    }
    if (link.startsWith('socket:[') && inodes.has(link.slice(8, -1))) return true
  }
  return false
}
