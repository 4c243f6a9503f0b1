import { readFileSync } from 'node:fs'

/** Navigator's version, from this package's package.json (`navigator --version`, the status page). */
export function navigatorVersion (): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}
