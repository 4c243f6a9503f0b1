import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { test } from 'tap'
import { COOKIE, startDemoFly } from './e2e-helpers.js'

const SCREENSHOT = fileURLToPath(new URL('../../../docs/demo.png', import.meta.url))

test('in a real browser the demo stays on one Machine, with the configured cookie and a WebSocket on the same Machine', async (t) => {
  // Fixed ids keep the saved screenshot the same from run to run.
  const fly = await startDemoFly(t, { app: 'navigator-demo', ids: ['d8e7a1b2c3d4e5', '91c3f07a2b4e68', '5f2a9c81e7d034'] })
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 900, height: 560 } })
  const page = await context.newPage()

  await page.goto(`${fly.edge.url}/app/`)
  const machine = (await page.textContent('#machine'))?.trim() ?? ''
  t.ok(fly.launched.machines.some((m) => m.id === machine), `the page names a Machine (${machine})`)
  for (let i = 0; i < 10; i++) {
    await page.reload()
    t.equal((await page.textContent('#machine'))?.trim(), machine, `reload ${i + 1} is served by the same Machine`)
  }
  t.equal(await page.textContent('#views'), '11', 'the reload counter lives on that Machine')
  t.ok(fly.routes.some((r) => r.replayed && r.machineId === machine), 'some reloads were replayed by Fly-Replay')

  const cookies = await context.cookies()
  const cookie = cookies.find((c) => c.name === COOKIE)
  t.ok(cookie, 'the browser stored the sticky-session cookie')
  if (cookie !== undefined) {
    t.equal(cookie.value, machine)
    t.equal(cookie.path, '/')
    t.equal(cookie.httpOnly, true)
    t.equal(cookie.secure, false)
    t.equal(cookie.sameSite, 'Lax')
    const expectedExpiry = Date.now() / 1000 + 24 * 3600
    t.ok(Math.abs(cookie.expires - expectedExpiry) < 300, `expires in about 24h (${cookie.expires})`)
  }

  await page.waitForFunction(() => document.getElementById('ws')?.dataset.machine !== undefined, null, { timeout: 15_000 })
  t.equal(await page.textContent('#ws'), `WebSocket connected to machine ${machine}`)
  await mkdir(fileURLToPath(new URL('../../../docs/', import.meta.url)), { recursive: true })
  await page.screenshot({ path: SCREENSHOT })
})
