import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import type { ServerConfig } from '@navigator/config'
import { answer, createMaintenanceResponder } from '@navigator/proxy'
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

/** Served with 502 when an app cannot start as configured and `<public_dir>/502.html` does not exist. */
export const BUILT_IN_CANNOT_START_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Application cannot start</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style>
</head>
<body>
<h1>This application cannot start</h1>
<p>The server could not start the application that answers this address. Trying again will not help until its
configuration or its files are fixed; the reason is in the server's log.</p>
</body>
</html>
`

/**
 * The answer when a process can never start as configured (its command or folder is missing): 502 with
 * `<public_dir>/502.html` or the built-in page, never cached, and no Retry-After: unlike the maintenance page, it
 * does not promise that the app is coming back.
 */
export function cannotStartFor (server: Pick<ServerConfig, 'publicDir'>): MaintenanceResponder {
  let page: Buffer
  try {
    page = readFileSync(join(server.publicDir, '502.html'))
  } catch {
    page = Buffer.from(BUILT_IN_CANNOT_START_PAGE)
  }
  const headers = Object.freeze(['cache-control', 'no-store', 'content-type', 'text/html; charset=utf-8'])
  return function cannotStart (ctx) {
    answer(ctx, 502, headers, page)
  }
}
