import { createRequire } from 'node:module'
import type * as Yaml from 'yaml'

let loaded: typeof Yaml | null = null

/**
 * The `yaml` library, loaded on first use: only a config with a problem to report (or one js-yaml cannot be trusted
 * with) needs it, and loaded up front it cost a running Navigator several MiB of memory for nothing.
 */
export function yamlLibrary (): typeof Yaml {
  loaded ??= createRequire(import.meta.url)('yaml') as typeof Yaml
  return loaded
}
