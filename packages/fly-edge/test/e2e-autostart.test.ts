import { test } from 'tap'
import { CookieJarClient, demoConfig, startDemoFly } from './e2e-helpers.js'

interface WhoAmI { machine: string }

test('with autostart, a request pinned to a stopped Machine starts its process again and is served there', async (t) => {
  // A generous replay timeout: the replay waits for a whole navigator process to start.
  const config = await demoConfig(t, [['replay_timeout: 5s', 'replay_timeout: 60s']])
  const fly = await startDemoFly(t, { config, count: 2 })
  const client = new CookieJarClient(fly.edge.url)
  const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
  await fly.edge.stopMachine(pinned)
  t.equal(fly.edge.machine(pinned)?.state, 'stopped')
  const reply = await client.get('/app/whoami')
  t.equal(reply.status, 200)
  t.equal(reply.json<WhoAmI>().machine, pinned)
  t.equal(fly.edge.machine(pinned)?.state, 'started')
})
