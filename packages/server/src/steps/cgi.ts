import { ANSWERED, answer, isUpgrade, NEXT, type RequestContext, type Step, type StepResult } from '@navigator/proxy'
import type { CgiScriptConfig } from '@navigator/config'
import { runCgi } from '../cgi.js'
import { HtpasswdFile } from '../htpasswd.js'
import { navigatorVersion } from '../version.js'
import type { StepOptions } from './index.js'

const TEXT = 'text/plain; charset=utf-8'
const NO_UPGRADE = Object.freeze(['content-type', TEXT])
const FORBIDDEN = Object.freeze(['content-type', TEXT])

/** The user name of a Basic `Authorization` header (not verified), or null. */
function basicUser (authorization: string | undefined): string | null {
  if (authorization === undefined || !/^basic /i.test(authorization)) return null
  const credentials = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8')
  const colon = credentials.indexOf(':')
  return colon === -1 ? null : credentials.slice(0, colon)
}

/**
 * `server.cgi_scripts`: a request whose forwarded path is a script's runs it (packages/server/src/cgi.ts), after
 * auth and before anything is replayed or proxied. A method the script does not take gets 405; a WebSocket upgrade
 * 400. With `allowed_users`, the credentials are checked here, on a public path too: none or wrong ones get 401,
 * a user not in the list 403. REMOTE_USER is the user auth verified.
 */
export function cgi (options: StepOptions): Step | null {
  const { config, log, env, reloadConfig, port } = options
  const scripts = new Map<string, CgiScriptConfig>()
  for (const script of config.server.cgiScripts) scripts.set(script.path, script)
  if (scripts.size === 0) return null
  const auth = config.auth
  const passwords = auth === null ? null : new HtpasswdFile(auth.htpasswd, log)
  const challenge = auth === null
    ? []
    : Object.freeze(['www-authenticate', `Basic realm="${auth.realm.replace(/["\\]/g, '\\$&')}"`, 'content-type', TEXT])
  const notAllowed = new Map<string, readonly string[]>()
  const version = navigatorVersion()

  function start (ctx: RequestContext, script: CgiScriptConfig, remoteUser: string | null): typeof ANSWERED {
    void runCgi(ctx, { script, env, cwd: config.dir, port, remoteUser, version, reload: reloadConfig, log: ctx.log })
    return ANSWERED
  }

  function authorised (ctx: RequestContext, script: CgiScriptConfig, verified: boolean): typeof ANSWERED {
    const user = verified ? basicUser(ctx.req.headers.authorization) : null
    if (script.allowedUsers.length > 0) {
      if (user === null) {
        answer(ctx, 401, challenge, 'Unauthorized\n')
        return ANSWERED
      }
      if (!script.allowedUsers.includes(user)) {
        ctx.log.info({ cgi: script.path, user }, 'CGI script refused: the user is not in its allowed_users')
        answer(ctx, 403, FORBIDDEN, 'Forbidden\n')
        return ANSWERED
      }
    }
    return start(ctx, script, user)
  }

  return {
    name: 'cgi',
    run (ctx): StepResult {
      const script = scripts.get(ctx.forwardedPath)
      if (script === undefined) return NEXT
      if (isUpgrade(ctx.req)) {
        answer(ctx, 400, NO_UPGRADE, 'WebSockets are not taken on a CGI script\'s path\n')
        return ANSWERED
      }
      if (script.method !== null && ctx.req.method !== script.method) {
        let headers = notAllowed.get(script.method)
        if (headers === undefined) notAllowed.set(script.method, headers = Object.freeze(['allow', script.method, 'content-type', TEXT]))
        answer(ctx, 405, headers, 'Method Not Allowed\n')
        return ANSWERED
      }
      const authorization = ctx.req.headers.authorization
      if (passwords === null || authorization === undefined) return authorised(ctx, script, false)
      const verified = passwords.check(authorization)
      if (typeof verified === 'boolean') return authorised(ctx, script, verified)
      return verified.then((ok) => authorised(ctx, script, ok))
    }
  }
}
