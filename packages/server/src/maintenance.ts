import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import type { ServerConfig } from '@navigator/config'
import { createMaintenanceResponder } from '@navigator/proxy'
import type { MaintenanceResponder } from '@navigator/proxy'

/** Served when neither `server.maintenance_page` nor `<public_dir>/503.html` exists. */
export const BUILT_IN_MAINTENANCE_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Temporarily unavailable</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style>
</head>
<body>
<h1>We will be right back</h1>
<p>This application is starting or briefly unavailable. The page will work again in a few seconds.</p>
</body>
</html>
`

/**
 * Reads the maintenance page once (at start and at each reload), so answering
 * with it never touches the disk: the configured file, else
 * `<public_dir>/503.html`, else the built-in page.
 */
export function loadMaintenancePage (server: Pick<ServerConfig, 'maintenancePage' | 'publicDir'>, log?: FastifyBaseLogger): Buffer {
  if (server.maintenancePage !== null) {
    try {
      return readFileSync(server.maintenancePage)
    } catch (err) {
      log?.warn({ file: server.maintenancePage, err: (err as Error).message }, 'maintenance page unreadable, using the built-in page')
      return Buffer.from(BUILT_IN_MAINTENANCE_PAGE)
    }
  }
  try {
    return readFileSync(join(server.publicDir, '503.html'))
  } catch {
    return Buffer.from(BUILT_IN_MAINTENANCE_PAGE)
  }
}

/** The maintenance answer of a configuration: 503 with its page (see loadMaintenancePage). */
export function maintenanceFor (server: Pick<ServerConfig, 'maintenancePage' | 'publicDir'>, log?: FastifyBaseLogger): MaintenanceResponder {
  return createMaintenanceResponder(loadMaintenancePage(server, log))
}
