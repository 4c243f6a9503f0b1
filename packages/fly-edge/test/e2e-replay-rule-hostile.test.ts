import { test } from 'tap'
import { request } from './fixtures.js'
import { COOKIE, cookieFrom, demoConfig, startDemoFly } from './e2e-helpers.js'

// Hostile input (issue 7), end to end: a replay rule and sticky sessions that disagree about where a request belongs.
// The rule sends /app/ to ams; the user's cookie names the Machine in iad. Before the fix, the ams Machine replayed
// the request to iad (sticky) and the iad Machine replayed it back to ams (rule) until the edge gave up after 10
// replays. Now a request Navigator replayed once is served where it lands: at most one replay, and the cookie stays.

interface WhoAmI { machine: string, region: string }

test('a replay rule and a sticky cookie that disagree never bounce a request: at most one replay, always served', async (t) => {
  const config = await demoConfig(t, [['routes:\n  fly:\n', 'routes:\n  fly:\n    replay:\n      - path: "^/app/"\n        region: ams\n']])
  const fly = await startDemoFly(t, { config })
  const pinned = fly.launched.machines.find((machine) => machine.region === 'iad')
  const ams = fly.launched.machines.find((machine) => machine.region === 'ams')
  if (pinned === undefined || ams === undefined) throw new Error('the demo Machines are not in iad and ams')

  const servedBy = new Map<string, number>()
  for (let i = 0; i < 30; i++) {
    const before = fly.routes.length
    const reply = await request(`${fly.edge.url}/app/whoami`, { headers: { cookie: `${COOKIE}=${pinned.id}` } })
    const routes = fly.routes.slice(before)
    t.equal(reply.status, 200, `request ${i}: served (${reply.status})`)
    const replays = routes.filter((route) => route.replayed).length
    t.ok(replays <= 1, `request ${i}: ${replays} replay(s)`)
    const cookie = cookieFrom(reply)
    t.ok(cookie === null || cookie === pinned.id, `request ${i}: the cookie still names ${pinned.id} (${String(cookie)})`)
    if (reply.status === 200) {
      const machine = reply.json<WhoAmI>().machine
      servedBy.set(machine, (servedBy.get(machine) ?? 0) + 1)
    }
  }
  t.comment(`served by ${JSON.stringify(Object.fromEntries(servedBy))}`)
  t.ok([...servedBy.keys()].every((id) => id === pinned.id || id === ams.id), 'served by the rule\'s region or the cookie\'s Machine only')
})
