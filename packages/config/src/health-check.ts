// `server.health_check` in the Go Navigator's two forms: a path, or `{ path, response }`.

import { headerMap } from './headers.js'
import type { ProblemCollector } from './problems.js'
import type { HealthCheckResponse } from './types.js'

/** What Navigator answers on a health check given as a path alone (`server.health_check: /up`). */
export const DEFAULT_HEALTH_CHECK_RESPONSE: Readonly<HealthCheckResponse> = Object.freeze({
  status: 200,
  body: 'OK\n',
  headers: Object.freeze({ 'content-type': 'text/plain; charset=utf-8' })
})

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** Its path (or null) and the answer Navigator gives (null: the check is proxied to the app). */
export function normaliseHealthCheck (value: unknown, problems: ProblemCollector): { path: string | null, response: HealthCheckResponse | null } {
  if (typeof value === 'string') return { path: value, response: DEFAULT_HEALTH_CHECK_RESPONSE }
  if (!isRecord(value)) return { path: null, response: null }
  const path = typeof value.path === 'string' ? value.path : null
  if (!isRecord(value.response)) return { path, response: null }
  const response = value.response
  return {
    path,
    response: {
      status: Number.isInteger(response.status) ? response.status as number : 200,
      body: typeof response.body === 'string' ? response.body : '',
      headers: headerMap(response.headers, ['server', 'health_check', 'response', 'headers'], problems)
    }
  }
}
