import { test } from 'tap'
import { parseReplayHeader } from '@navigator/fly-replay'
import { send, served, startMachines } from './fly-fidelity-helpers.js'
import type { Machine, Reply } from './fly-fidelity-helpers.js'

// header_name: a client without cookies (an API client, a native app) is pinned by a request header instead. The
// first answer carries `<header_name>: <signed value>`; the client sends it back; every Machine decides on it as on
// the cookie. Through three real navigators and a stand-in for Fly's edge that spreads requests across them and
// follows fly-replay answers the way Fly does; the header's value is stable, so Fly's replay_cache with
// `type = "header"` could cache on it.

const HEADER = 'x-machine'
const SECRET = 'header-round-trip'

/** Fly's part: deliver to a Machine; when it answers with fly-replay, deliver the same request to the one it names. */
async function throughEdge (machines: Record<string, Machine>, first: Machine, path: string, headers: Record<string, string>): Promise<{ reply: Reply, replays: number }> {
  let reply = await send(first.address, path, { headers })
  let replays = 0
  while (reply.headers['fly-replay'] !== undefined) {
    const target = parseReplayHeader(reply.headers['fly-replay'])?.instance
    if (target === undefined || machines[target] === undefined || ++replays > 1) throw new Error(`unexpected replay: ${String(reply.headers['fly-replay'])}`)
    reply = await send(machines[target].address, path, { headers: { ...headers, 'fly-replay-src': `instance=${first.id};region=ord;t=1;state=nav-sticky` } })
  }
  return { reply, replays }
}

test('a client pinned by header_name stays on its Machine for 50 requests spread across three', async (t) => {
  const sticky = { sticky: [`header_name: ${HEADER}`, `secret: ${SECRET}`] }
  const machines = await startMachines(t, ['m1', 'm2', 'm3'], { m1: sticky, m2: sticky, m3: sticky })
  const order = [machines.m2, machines.m3, machines.m1]

  const first = await send(order[0].address, '/app/start')
  t.equal(first.status, 200)
  const value = first.headers[HEADER] as string
  t.match(value, /^m2\.[A-Za-z0-9_-]{43}$/, 'the signed value of the Machine that served it')

  let replays = 0
  const seen = new Set<string>()
  for (let i = 0; i < 50; i++) {
    const { reply, replays: hops } = await throughEdge(machines, order[i % 3], `/app/page?n=${i}`, { [HEADER]: value })
    replays += hops
    t.equal(reply.status, 200, `request ${i}`)
    seen.add(`${String(reply.json().machine)} ${String(reply.headers[HEADER])}`)
  }
  t.same([...seen], [`m2 ${value}`], 'every answer came from m2 and carried the same value back')
  t.equal(replays, 33, 'the requests Fly balanced to m3 or m1 were replayed to m2, once each')
  t.equal((await served(machines.m2)).length, 51, 'm2 served the first request and all 50')
  t.same(await served(machines.m1), [])
  t.same(await served(machines.m3), [])
})

test('a forged or unsigned header value is never echoed: the client is pinned where it landed', async (t) => {
  const { m1 } = await startMachines(t, ['m1'], { m1: { sticky: [`header_name: ${HEADER}`, `secret: ${SECRET}`] } })
  for (const forged of ['m2', `m2.${'x'.repeat(43)}`, 'm2;instance=evil']) {
    const reply = await send(m1.address, '/app/page', { headers: { [HEADER]: forged } })
    t.equal(reply.status, 200, forged)
    t.equal(reply.headers['fly-replay'], undefined)
    t.match(reply.headers[HEADER], /^m1\.[A-Za-z0-9_-]{43}$/, `${forged}: answered with this Machine's value only`)
  }
})
