// `logging`: the format of the log lines, and a file they are written to besides stdout. The Go Navigator's
// `logging.vector` (a Vector process it starts and feeds through a socket) is not built in: Vector reads the file.

import { resolve } from 'node:path'
import { DEFAULT_LOG_FORMAT } from './defaults.js'
import type { ProblemCollector } from './problems.js'
import type { LoggingConfig } from './types.js'

/** What `{{app}}` in `logging.file` stands for in the file of Navigator's own lines. */
export const NAVIGATOR_LOG_APP = 'navigator'

export function normaliseLogging (logging: Record<string, unknown>, dir: string, problems: ProblemCollector): LoggingConfig {
  if (logging.vector !== undefined) {
    problems.add(['logging', 'vector'], 'Vector is not built in: remove logging.vector, set logging.file (for example /var/log/navigator/{{app}}.log), ' +
      'and run Vector on its own with a `file` source whose include reads those files')
  }
  return {
    format: logging.format === 'text' ? 'text' : DEFAULT_LOG_FORMAT as LoggingConfig['format'],
    file: typeof logging.file === 'string' && logging.file !== '' ? resolve(dir, logging.file) : null
  }
}
