import { createMaintenanceResponder } from '@navigator/proxy'

/** The page the plugin answers with when the cookie's Machine cannot be reached and no `maintenance` is given. */
export const DEFAULT_MAINTENANCE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable</title></head>
<body><h1>Temporarily unavailable</h1><p>The server holding your session is not reachable right now. Please try again in a moment.</p></body></html>
`

/** The built-in maintenance answer: 503 with the page above, not cached, with Retry-After. */
export const defaultMaintenance = createMaintenanceResponder(DEFAULT_MAINTENANCE_PAGE)
