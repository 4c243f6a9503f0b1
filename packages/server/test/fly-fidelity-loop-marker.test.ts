import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import { COOKIE, MB, send, served, sha256, startMachines, stickyCookie } from './fly-fidelity-helpers.js'

// Every request Navigator proxies to another Machine carries `x-navigator-via: <this Machine>`, and a request that
// carries it is never proxied or replayed to another Machine again, by any step. Through real navigators, counted
// at the tenants that serve them.

const RULE = ['replay:', '  - path: "^/api/"', '    machine: m2']

test('a replay rule, a cookie for another Machine and a large body: served exactly once', async (t) => {
  // The rule sends /api/ to m2; the user's cookie names m1; /api/* is sticky too. Without the marker, m2's sticky
  // step would proxy the body back to m1, whose rule would proxy it to m2 again, and so on.
  const { m1, m2 } = await startMachines(t, ['m1', 'm2'], { m1: { fly: RULE }, m2: { fly: RULE } })
  const body = randomBytes(MB + 1)
  const answer = await send(m1.address, '/api/orders', { body, headers: { cookie: `${COOKIE}=m1` } })
  t.equal(answer.status, 200)
  t.match(answer.json(), { machine: 'm2', size: MB + 1, sha256: sha256(body) }, 'served where the rule sends it')
  t.equal(answer.json().headers['x-navigator-via'], 'm1')
  t.equal(stickyCookie(answer), undefined, 'the cookie is left on m1 for the paths the rule does not cover')

  const chunked = await send(m1.address, '/api/orders', { body: randomBytes(5000), headers: { cookie: `${COOKIE}=m1` }, chunked: true })
  t.equal(chunked.status, 200)
  t.equal(chunked.json().machine, 'm2')

  t.same(await served(m1), [], 'm1 served none of them')
  t.same(await served(m2), [`served m2 POST /api/orders ${MB + 1}`, 'served m2 POST /api/orders 5000'], 'm2 served each exactly once')
})

test('x-navigator-via only ever prevents a hop: served here, or the maintenance page when this Machine is not the target', async (t) => {
  const { m1, m2 } = await startMachines(t, ['m1', 'm2'], { m1: { fly: RULE } })
  const marked = { 'x-navigator-via': 'm2' }
  const sticky = await send(m1.address, '/app/page', { headers: { ...marked, cookie: `${COOKIE}=m2` } })
  t.equal(sticky.status, 200, 'a sticky path: served here rather than replayed')
  t.equal(sticky.headers['fly-replay'], undefined)
  t.equal(sticky.json().machine, 'm1')
  t.equal(stickyCookie(sticky), undefined, 'and the cookie is not moved')
  const large = await send(m1.address, '/app/upload', { body: randomBytes(MB + 1), headers: { ...marked, cookie: `${COOKIE}=m2` } })
  t.equal(large.status, 200, 'nor proxied')
  t.equal(large.json().machine, 'm1')

  const rule = await send(m1.address, '/api/orders', { headers: marked })
  t.equal(rule.status, 503, 'a rule whose target is another Machine: the maintenance page, never a second hop')
  t.equal(rule.headers['fly-replay'], undefined)
  const own = await send(m1.address, '/app/page', { headers: { ...marked, cookie: `${COOKIE}=m1` } })
  t.equal(own.status, 200, 'a cookie for this Machine is served as always')
  t.match(stickyCookie(own), /^_navigator_machine=m1;/)
  t.same(await served(m2), [], 'm2 never saw any of them')
})

test('a replay rule naming this Machine stands when the cookie\'s Machine is unavailable: served here, no fallback', async (t) => {
  // On m2 the rule for /api/ names m2 itself. The user's cookie names m1, which Fly could not use
  // (fly-preferred-instance-unavailable, as after a cached prefer_instance replay, or fly-replay-failed).
  const { m1, m2 } = await startMachines(t, ['m1', 'm2'], { m2: { fly: RULE } })
  for (const unavailable of [{ 'fly-preferred-instance-unavailable': 'm1' }, { 'fly-replay-failed': 'reason=retries_exhausted;instance=m1' }]) {
    const answer = await send(m2.address, '/api/orders', { headers: { ...unavailable, cookie: `${COOKIE}=m1` } })
    t.equal(answer.status, 200, `${Object.keys(unavailable)[0]}: served, not the maintenance page`)
    t.equal(answer.json().machine, 'm2')
    t.equal(stickyCookie(answer), undefined, 'the cookie is left on m1 for the paths the rule does not cover')
  }
  // A sticky path the rule does not cover still gets the fallback (maintenance by default).
  const other = await send(m2.address, '/app/page', { headers: { 'fly-preferred-instance-unavailable': 'm1', cookie: `${COOKIE}=m1` } })
  t.equal(other.status, 503)
  t.same(await served(m1), [], 'm1 served none of them')
  t.same(await served(m2), ['served m2 GET /api/orders 0', 'served m2 GET /api/orders 0'])
})
