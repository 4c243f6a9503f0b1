import { test } from 'tap'
import { CookieJarClient, demoConfig, startDemoFly } from './e2e-helpers.js'

interface WhoAmI { machine: string }

test('stopping the pinned Machine gives the maintenance page (default fallback_mode)', async (t) => {
  // Without autostart, as with auto_start_machines = false: the stopped Machine stays down.
  const fly = await startDemoFly(t, { count: 2, edge: { autostart: false } })
  const client = new CookieJarClient(fly.edge.url)
  const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
  await fly.edge.stopMachine(pinned)
  const reply = await client.get('/app/whoami')
  t.equal(reply.status, 503)
  t.equal(reply.headers['cache-control'], 'no-store')
  t.ok(reply.headers['retry-after'], 'Retry-After tells the browser to come back')
  t.equal(client.cookie, pinned, 'the cookie still names the pinned Machine')
  t.ok(fly.routes.some((r) => r.fallback), 'the edge fell back to the issuer with fly-replay-failed')

  await fly.edge.startMachine(pinned)
  const back = await client.get('/app/whoami')
  t.equal(back.status, 200)
  t.equal(back.json<WhoAmI>().machine, pinned, 'once it is back, the client is served there again')
})

test('with route_to_available, stopping the pinned Machine moves the client to a new Machine', async (t) => {
  const config = await demoConfig(t, [['fallback_mode: maintenance', 'fallback_mode: route_to_available']])
  const fly = await startDemoFly(t, { config, count: 2, edge: { autostart: false } })
  const client = new CookieJarClient(fly.edge.url)
  const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
  await fly.edge.stopMachine(pinned)
  const reply = await client.get('/app/whoami')
  t.equal(reply.status, 200)
  const now = reply.json<WhoAmI>().machine
  t.not(now, pinned)
  t.equal(client.cookie, now, 'the cookie now names the new Machine')
  for (let i = 0; i < 4; i++) t.equal((await client.get('/app/whoami')).json<WhoAmI>().machine, now)
})
