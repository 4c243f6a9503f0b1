import { createRequire } from 'node:module'
import type { Pool as UndiciPool } from 'undici'

/**
 * undici's connection pool, loaded by itself. The package's index also loads fetch, WebSocket, EventSource, its
 * caches and mocks, about 10 MiB of resident memory the proxy never uses (bench/README.md, idle memory). undici has
 * no exports map, so the file is reached by its path in undici 7; this module is the only place that knows it, and
 * test/undici-pool.test.ts fails when an undici upgrade moves or changes it.
 */
export const UNDICI_POOL_FILE = 'undici/lib/dispatcher/pool.js'

export const Pool = createRequire(import.meta.url)(UNDICI_POOL_FILE) as typeof UndiciPool
