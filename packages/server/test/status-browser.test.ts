import { test } from 'tap'
import { mkdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import WebSocket from 'ws'
import { cableServer, freePort, http, startSite, tenant } from './helpers.js'

// The status page in a real browser (Debian's chromium, driven by playwright-core): the tables show the processes
// and the sticky counters, a live refresh shows a new request counted without reloading the page, nothing on it
// reaches an app or breaks its Content-Security-Policy, and a screenshot is kept for the documentation.

// The documentation's screenshot is written only when asked for (UPDATE_SCREENSHOT=1), so a test run leaves the
// checkout as it was; otherwise it goes to a temporary file, which still proves the page renders.
const SCREENSHOT = process.env.UPDATE_SCREENSHOT === '1'
  ? fileURLToPath(new URL('../../../docs/status-page.png', import.meta.url))
  : join(tmpdir(), `navigator-status-page-${process.pid}.png`)
const COOKIE = '_navigator_machine'
// Fixed identities keep the saved screenshot alike from run to run.
const HERE = 'e2865d4a7b3c18'
const AWAY = '3d8e1f2a4b5c6d'
const OTHER = '91c3f07a2b4e68'

/** Requests the tenants were sent, by the metrics: the upstream latency histogram's count, over every tenant. */
async function tenantRequests (address: string): Promise<number> {
  return (await http(address, '/metrics')).text.split('\n')
    .filter((line) => line.startsWith('navigator_upstream_response_seconds_count{') && line.includes('kind="tenant"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
}

test('in a real browser the status page shows the processes and the sticky counters, and refreshes itself', async (t) => {
  const cablePort = await freePort()
  const navigator = await startSite(t, {
    server: ['  metrics: {}', '  status: {}'],
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      '      paths: ["/app/*", "/blog/*"]',
      '      peers:',
      `        ${AWAY}: "http://127.0.0.1:${await freePort()}"`,
      `        ${OTHER}: "http://127.0.0.1:${await freePort()}"`
    ],
    tenants: [tenant('app', '/app', 'start: eager'), tenant('blog', '/blog', 'start: eager'), tenant('admin', '/admin')],
    after: [
      ...cableServer(cablePort),
      // The TurboCable hub on a path of its own (the standalone server has /cable), and a background worker.
      'cable:',
      '  enabled: true',
      '  path: /hub',
      'managed_processes:',
      '  - name: worker',
      `    command: ${JSON.stringify(process.execPath)}`,
      '    args: [-e, "setInterval(() => {}, 60000)"]'
    ]
  }, { env: { FLY_MACHINE_ID: HERE, FLY_APP_NAME: 'navigator-demo', FLY_REGION: 'ams' }, warm: ['/blog/'] })
  const { address } = navigator
  await navigator.waitForLog((line) => line.msg === 'managed process started' && line.process === 'worker')

  // Some traffic: new visitors, returning ones, users of other Machines, a tampered cookie, two fallbacks.
  const cookie = (machine: string, more: Record<string, string> = {}): Record<string, string> => ({ cookie: `${COOKIE}=${machine}`, ...more })
  for (let i = 0; i < 4; i++) await http(address, '/app/')
  for (let i = 0; i < 3; i++) await http(address, '/app/posts', { headers: cookie(HERE) })
  for (let i = 0; i < 2; i++) await http(address, '/app/posts', { headers: cookie(OTHER) })
  await http(address, '/app/posts', { headers: cookie('tampered"') })
  await http(address, '/app/posts', { headers: cookie(AWAY, { 'fly-replay-failed': 'reason=timeout' }) })
  await http(address, '/blog/', { headers: cookie(OTHER, { 'fly-replay-failed': 'reason=no_candidate' }) })
  const ws = new WebSocket(`${address.replace('http', 'ws')}/cable`)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  t.teardown(() => { ws.terminate() })
  // Two browsers on the hub, on two streams (each subscription is answered before the next is sent).
  for (const stream of ['posts', 'comments']) {
    const subscriber = new WebSocket(`${address.replace('http', 'ws')}/hub`)
    t.teardown(() => { subscriber.terminate() })
    await new Promise((resolve, reject) => { subscriber.once('open', resolve); subscriber.once('error', reject) })
    const subscribed = new Promise((resolve) => { subscriber.once('message', resolve) })
    subscriber.send(JSON.stringify({ type: 'subscribe', stream }))
    await subscribed
  }

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1000, height: 880 } })
  const problems: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()) })
  page.on('pageerror', (err) => { problems.push(err.message) })
  const requested: string[] = []
  page.on('request', (request) => { requested.push(new URL(request.url()).pathname) })

  const sentBefore = await tenantRequests(address)
  await page.goto(`${address}/navigator/status`)
  t.equal(await page.title(), `Navigator status · ${HERE}`)
  const row = async (selector: string): Promise<string[]> => await page.locator(selector).locator('th, td').allInnerTexts()
  t.match(await row('#processes tr[data-process="tenant:app"]'), ['app', 'tenant', '/app', 'ready', /^\d+$/, /^\d+$/, /\d s$/, '0', '0', '0'], 'the tenant, ready, with its port, pid and uptime')
  t.match(await row('#processes tr[data-process="tenant:admin"]'), ['admin', 'tenant', '/admin', 'stopped', '–', '–', '–', '0', '0', '0'], 'a tenant nobody asked for: stopped')
  t.match(await row('#processes tr[data-process="standalone:cable"]'), ['cable', 'standalone', '/cable', 'running', String(cablePort), /^\d+$/, /\d s$/, '0', '0', '1'], 'the standalone server, with its WebSocket')
  t.match(await row('#processes tr[data-process="managed:worker"]'), ['worker', 'managed', '', 'running', '–', /^\d+$/, /\d s$/, '0', '0', '0'], 'the managed process, running, with its pid and uptime')
  t.equal(await page.locator('#cable').innerText(), '2 on 2 streams', 'the cable hub\'s WebSockets and their streams')
  t.same(await row('#decisions tr[data-decision="new"]'), ['new', '5'], 'new visitors (with the warm-up)')
  t.same(await row('#decisions tr[data-decision="own"]'), ['own', '3'])
  t.same(await row('#decisions tr[data-decision="replayed"]'), ['replayed', '2'])
  t.same(await row('#decisions tr[data-decision="fallback"]'), ['fallback', '2'])
  t.same(await row('#rejected tr[data-reason="malformed"]'), ['malformed', '1'], 'the tampered cookie, by reason')
  t.match(await page.locator('#fallbacks tbody tr').allInnerTexts(), [new RegExp(`${OTHER}\\s+maintenance page`), new RegExp(`${AWAY}\\s+maintenance page`)], 'the recent fallbacks, newest first, with their Machine')
  t.match(await page.locator('#listen').innerText(), address, 'the address Navigator listens on')

  // A new visitor arrives; the page shows it at its next refresh, without being reloaded.
  await http(address, '/app/')
  await page.waitForFunction(() => document.querySelector('#decisions tr[data-decision="new"] td')?.textContent === '6', null, { timeout: 10_000 })
  t.pass('a live refresh shows the new visitor counted')
  t.match(await page.locator('#live').innerText(), /^Live: refreshed every 2 s$/)
  t.equal(await tenantRequests(address), sentBefore + 1, 'the page and its refreshes reached no app: only the new visitor did')
  t.ok(requested.length >= 2 && requested.every((path) => path === '/navigator/status' || path === '/navigator/status.json'), `the page asked for itself and its JSON only (${requested.join(', ')})`)
  t.same(problems, [], 'no script error, nothing the Content-Security-Policy refused')

  await mkdir(dirname(SCREENSHOT), { recursive: true })
  await page.screenshot({ path: SCREENSHOT })
  t.ok((await stat(SCREENSHOT)).size > 10_000, 'a screenshot of the page was taken')
  if (process.env.UPDATE_SCREENSHOT !== '1') await rm(SCREENSHOT, { force: true })
})

test('in a real browser, a name that is markup stays text, at first and after a refresh', async (t) => {
  const hostile = '<img src=x onerror="document.title=\'owned\'">'
  const navigator = await startSite(t, {
    server: ['  status: {}'],
    tenants: [tenant(JSON.stringify(hostile), '/app')]
  }, { env: { FLY_MACHINE_ID: HERE, FLY_REGION: '<b>ams</b>' } })
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`${navigator.address}/navigator/status`)
  for (const when of ['as served', 'after a refresh']) {
    t.equal(await page.locator('#processes td.name').innerText(), hostile, `${when}: the tenant's name, as text`)
    t.equal(await page.locator('main img, main b:text-is("ams")').count(), 0, `${when}: no element made from a name`)
    t.match(await page.locator('header .sub').innerText(), 'region <b>ams</b>', `${when}: the region, as text`)
    t.not(await page.title(), 'owned', `${when}: no script of a name ran`)
    if (when === 'as served') {
      const asOf = await page.locator('#as-of').innerText()
      await page.waitForFunction((before) => document.getElementById('as-of')?.textContent !== before, asOf, { timeout: 10_000 })
    }
  }
})
