// The sticky signing secret never leaves Navigator (no log line at debug, no response, no config error), rejected
// cookies are logged rate-limited, and the example production config sets the cookie attributes the Go Navigator's
// documentation recommends.
import { createHmac } from 'node:crypto'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { loadConfig } from '@navigator/config'
import { freePort, reservePort, runCli, siteConfig, startNavigator, tempDir, tenant, tenantStartPort, writeConfig } from './helpers.js'

const SECRET = 'sekrit-7f3a9c1e-do-not-print'
const OLD_SECRET = 'older-sekrit-42b8-do-not-print'
const COOKIE = '_navigator_machine'
const RAILS_CONFIG = fileURLToPath(new URL('../../../examples/rails/config/navigator.yml', import.meta.url))

function sign (id: string, secret: string): string {
  return `${id}.${createHmac('sha256', secret).update(id).digest('base64url')}`
}

async function stickyConfig (port: number, startPort: number, sticky: string[]): Promise<string> {
  return await siteConfig({
    listen: `"127.0.0.1:${port}"`,
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*"]',
      '      peers:',
      `        here: "http://127.0.0.1:${port}"`,
      `        other: "http://127.0.0.1:${port}"`,
      ...sticky.map((line) => `      ${line}`)
    ],
    startPort,
    tenants: [tenant('app', '/app')]
  })
}

interface Seen { status: number, text: string }

/** A GET whose whole answer (status line, headers, body) is returned as text. */
async function raw (address: string, path: string, headers: Record<string, string>, agent: Agent | false = false): Promise<Seen> {
  const url = new URL(address)
  return await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, text: `${res.statusCode ?? 0}\n${res.rawHeaders.join('\n')}\n\n${Buffer.concat(chunks).toString()}` })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

test('the signing secret appears in no log line (LOG_LEVEL=debug) and no response: bad cookies, replays, reloads, config errors', async (t) => {
  const listen = await reservePort()
  const port = listen.port
  const startPort = tenantStartPort()
  const dir = tempDir({ 'navigator.yml': await stickyConfig(port, startPort, [`secret: ["${SECRET}", "${OLD_SECRET}"]`]) })
  await listen.release()
  const nav = await startNavigator(t, dir, { LOG_LEVEL: 'debug', FLY_MACHINE_ID: 'here', FLY_APP_NAME: 'secrets', FLY_REGION: 'iad' })
  const answers: Seen[] = []
  const cookies = [
    null,
    sign('here', SECRET),
    sign('here', OLD_SECRET),
    sign('other', SECRET),
    'here',
    'here.not-a-signature',
    sign('gone', SECRET),
    '%%%',
    'x'.repeat(4000),
    sign('here', 'a-guessed-secret')
  ]
  for (const cookie of cookies) {
    const headers: Record<string, string> = cookie === null ? {} : { cookie: `${COOKIE}=${cookie}` }
    answers.push(await raw(nav.address, '/app/page', headers))
    answers.push(await raw(nav.address, '/app/page', { ...headers, 'content-type': 'text/plain', 'transfer-encoding': 'chunked' }))
  }
  t.ok(answers.some((a) => a.status === 307), 'a cookie for the other Machine was replayed')
  t.ok(answers.some((a) => a.status === 200))

  // A valid reload that rotates the keys, then invalid ones whose file holds the secret next to each mistake.
  writeConfig(dir, await stickyConfig(port, startPort, [`secret: ["${OLD_SECRET}x", "${SECRET}"]`]))
  nav.child.kill('SIGHUP')
  await nav.waitForLog((line) => line.msg === 'configuration reloaded')
  answers.push(await raw(nav.address, '/app/page', { cookie: `${COOKIE}=${sign('here', SECRET)}` }))
  const broken = [
    [`secret: ["${SECRET}", 5]`, 'cookie_samesite: Sideways'],
    [`secret: { value: "${SECRET}" }`],
    [`secret: "${SECRET}"`, `secert: "${SECRET}"`],
    [`secret: "${SECRET}"`, `cookie_max_age: "${SECRET}"`],
    [`secret: "${SECRET}"`, `fallback_mode: "${SECRET}"`]
  ]
  for (const [i, lines] of broken.entries()) {
    writeConfig(dir, await stickyConfig(port, startPort, lines))
    nav.child.kill('SIGHUP')
    await nav.waitForLog((line) => /previous one stays in effect/.test(String(line.msg)) &&
      nav.logs.filter((l) => /previous one stays in effect/.test(String(l.msg))).length > i)
    const check = await runCli(['--check', join(dir, 'navigator.yml')])
    t.equal(check.code, 2, `--check reports config ${i + 1}`)
    t.notOk((check.stdout + check.stderr).includes(SECRET), `--check of config ${i + 1} does not print the secret`)
  }
  answers.push(await raw(nav.address, '/app/page', {}))

  const logText = nav.logs.map((line) => JSON.stringify(line)).join('\n') + nav.stderr()
  t.ok(nav.logs.some((line) => line.msg === 'Sticky session cookie rejected; assigning this Machine'), 'rejections were logged')
  t.ok(nav.logs.some((line) => line.msg === 'request completed'), 'debug lines were on')
  t.ok(nav.logs.filter((line) => line.level === 50).length >= 5, 'the config errors were logged')
  t.notOk(logText.includes(SECRET), `no log line holds the secret (${nav.logs.length} lines)`)
  t.notOk(logText.includes(OLD_SECRET), 'nor the older one')
  // (The tenant echoes request headers, so a client that sent the secret itself would see it: no case here does.)
  const responses = answers.map((a) => a.text).join('\n')
  t.notOk(responses.includes(SECRET), `no response holds the secret (${answers.length} responses)`)
  t.notOk(responses.includes(OLD_SECRET))
})

test('a config error at start with the secret in the file prints every problem and never the secret', async (t) => {
  const dir = tempDir({
    'navigator.yml': await stickyConfig(await freePort(), await freePort(), [`secret: ["${SECRET}", 7]`, `cookie_max_age: "${SECRET}"`])
  })
  const run = await runCli([join(dir, 'navigator.yml')])
  t.equal(run.code, 2)
  t.match(run.stderr, /navigator\.yml:\d+:\d+:/)
  t.notOk((run.stdout + run.stderr).includes(SECRET))
})

test('a burst of 1,000 bad cookies is logged at most about once a second per reason', async (t) => {
  const listen = await reservePort()
  const dir = tempDir({ 'navigator.yml': await stickyConfig(listen.port, tenantStartPort(), [`secret: "${SECRET}"`]) })
  await listen.release()
  const nav = await startNavigator(t, dir, { FLY_MACHINE_ID: 'here', FLY_APP_NAME: 'secrets', FLY_REGION: 'iad' })
  const agent = new Agent({ keepAlive: true, maxSockets: 16 })
  t.teardown(() => { agent.destroy() })
  const bad = ['here.forged', '%%%', 'here', sign('gone', SECRET)]
  const started = Date.now()
  let next = 0
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < 1000) {
      const i = next++
      const answer = await raw(nav.address, '/app/page', { cookie: `${COOKIE}=${bad[i % bad.length]}` }, agent)
      if (answer.status !== 200) throw new Error(`bad cookie ${i} got ${answer.status}`)
    }
  }))
  const seconds = (Date.now() - started) / 1000
  const rejected = nav.logs.filter((line) => line.msg === 'Sticky session cookie rejected; assigning this Machine')
  const perReason: Record<string, number> = {}
  for (const line of rejected) perReason[String(line.reason)] = (perReason[String(line.reason)] ?? 0) + 1
  t.comment(`1,000 bad cookies in ${seconds.toFixed(1)} s: ${rejected.length} log lines ${JSON.stringify(perReason)}`)
  t.ok(Object.keys(perReason).length >= 3, 'several reasons were logged')
  for (const [reason, count] of Object.entries(perReason)) {
    t.ok(count <= Math.ceil(seconds) + 1, `${reason}: ${count} lines in ${seconds.toFixed(1)} s`)
  }
  t.notOk(rejected.some((line) => JSON.stringify(line).includes(SECRET)))
})

test('the example production config sets Secure, HttpOnly and SameSite=Lax on a signed cookie, as the sticky-sessions guide recommends', async (t) => {
  const config = await loadConfig(RAILS_CONFIG, { env: { ...process.env, STICKY_SECRET: SECRET } })
  const sticky = config.routes.fly.stickySessions
  t.equal(sticky.enabled, true)
  t.equal(sticky.cookieSecure, true, 'Secure: the cookie only travels over HTTPS')
  t.equal(sticky.cookieHttpOnly, true, 'HttpOnly: page scripts cannot read it')
  t.equal(sticky.cookieSameSite, 'Lax', 'SameSite=Lax: not sent on cross-site subrequests')
  t.same(sticky.secrets, [SECRET], 'signed with STICKY_SECRET from the environment')
})
