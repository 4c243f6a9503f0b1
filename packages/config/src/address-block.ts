import { isIP } from 'node:net'
import type { AddressBlock } from './types.js'

// The one reader of address blocks (`10.0.0.0/8`, `fdaa::/16`, or a single address), for `server.metrics.allow`;
// the server turns them into a `net.BlockList`.

/** An address block, or a message saying why the text is not one. */
export function parseAddressBlock (text: string): AddressBlock | string {
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  const version = isIP(address)
  if (version === 0) return `${JSON.stringify(text)} is not an address block: write an IP address with an optional prefix length, such as 10.0.0.0/8 or fdaa::/16`
  const family = version === 4 ? 'ipv4' : 'ipv6'
  const longest = version === 4 ? 32 : 128
  if (slash === -1) return { address, prefix: longest, family }
  const prefixText = text.slice(slash + 1)
  const prefix = Number(prefixText)
  if (!/^\d{1,3}$/.test(prefixText) || prefix > longest) return `${JSON.stringify(text)}: the prefix length must be 0 to ${longest}`
  return { address, prefix, family }
}
