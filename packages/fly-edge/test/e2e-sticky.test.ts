import { randomBytes } from 'node:crypto'
import { test } from 'tap'
import WebSocket from 'ws'
import { request, sha256 } from './fixtures.js'
import { COOKIE, CookieJarClient, startDemoFly } from './e2e-helpers.js'

interface WhoAmI { machine: string, region: string, app: string }

test('through the edge and real navigator Machines', async (t) => {
  const fly = await startDemoFly(t)
  const ids = fly.launched.machines.map((m) => m.id)

  await t.test('a cookie-jar client stays on one Machine for 50 requests while cookie-less clients spread', async (t) => {
    const client = new CookieJarClient(fly.edge.url)
    const first = await client.get('/app/whoami')
    t.equal(first.status, 200)
    const pinned = first.json<WhoAmI>().machine
    t.ok(ids.includes(pinned))
    t.equal(client.cookie, pinned, 'the cookie names the Machine that served the first request')
    const seen = new Set<string>()
    for (let i = 0; i < 50; i++) {
      const reply = await client.get('/app/whoami')
      t.equal(reply.status, 200)
      seen.add(reply.json<WhoAmI>().machine)
    }
    t.same([...seen], [pinned], 'all 50 requests served by the pinned Machine')
    const replayed = fly.routes.filter((r) => r.replayed && r.machineId === pinned)
    t.ok(replayed.length > 0, 'requests balanced elsewhere reached it through fly-replay')

    const anonymous = new Set<string>()
    for (let i = 0; i < 9; i++) anonymous.add((await request(`${fly.edge.url}/app/whoami`)).json<WhoAmI>().machine)
    t.ok(anonymous.size > 1, `cookie-less clients spread over ${anonymous.size} Machines`)
  })

  await t.test('a 2 MiB upload with the cookie reaches the pinned Machine through the direct proxy', async (t) => {
    const client = new CookieJarClient(fly.edge.url)
    const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
    const body = randomBytes(2 * 1024 * 1024)
    const before = fly.routes.length
    for (let i = 0; i < ids.length; i++) {
      const reply = await client.get('/app/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
      t.equal(reply.status, 200)
      const result = reply.json<{ machine: string, bytes: number, sha256: string }>()
      t.equal(result.machine, pinned)
      t.equal(result.bytes, body.length)
      t.equal(result.sha256, sha256(body))
    }
    const uploads = fly.routes.slice(before)
    t.ok(uploads.some((r) => r.machineId !== pinned), 'at least one upload landed on another Machine first')
    t.ok(uploads.every((r) => !r.answeredWithReplay && !r.replayed), 'and none was replayed: the Machine proxied it')
  })

  await t.test('a WebSocket opened with the cookie lands on the pinned Machine', async (t) => {
    const client = new CookieJarClient(fly.edge.url)
    const pinned = (await client.get('/app/whoami')).json<WhoAmI>().machine
    for (let i = 0; i < ids.length; i++) {
      const ws = new WebSocket(`${fly.edge.url.replace('http', 'ws')}/cable`, { headers: { cookie: `${COOKIE}=${pinned}` } })
      t.teardown(() => ws.terminate())
      const welcome = await new Promise<{ machine: string }>((resolve, reject) => {
        ws.once('message', (data) => resolve(JSON.parse(String(data))))
        ws.once('error', reject)
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)))
      })
      t.equal(welcome.machine, pinned)
      ws.close()
    }
    t.ok(fly.routes.some((r) => r.websocket && r.replayed && r.machineId === pinned), 'some upgrades were replayed to it')
  })
})
