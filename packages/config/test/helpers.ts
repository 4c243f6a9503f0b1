import { parseConfig, type ParseOptions } from '../src/load.js'
import { ConfigError } from '../src/problems.js'
import type { ConfigProblem } from '../src/types.js'

// What the config tests share: reading the problems of a file.

/** The problems of a file that must not load (a test failure when it does), as `navigator.yml` with no environment. */
export function problemsOf (t: Tap.Test, yaml: string, options: ParseOptions = {}): ConfigProblem[] {
  try {
    parseConfig(yaml, { file: 'navigator.yml', env: {}, ...options })
  } catch (err) {
    t.type(err, ConfigError)
    return (err as ConfigError).problems
  }
  t.fail('expected a ConfigError')
  return []
}

/** `path: message` for each problem of a file, in /srv/app with no environment; [] when it loads. */
export function problemLines (yaml: string): string[] {
  try {
    parseConfig(yaml, { dir: '/srv/app', env: {} })
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((problem) => `${problem.path}: ${problem.message}`)
    throw err
  }
  return []
}
