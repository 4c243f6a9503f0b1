import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import { COOKIE, MB, send, served, sha256, startMachines } from './fly-fidelity-helpers.js'

// Fly cannot replay a request larger than 1 MB, which is 1,000,000 bytes (not 1 MiB). Through real navigators: a body
// of exactly that is answered with fly-replay, one byte more (or a chunked body of unknown length) is proxied to
// the other Machine, for sticky sessions and replay rules alike, and routes.fly.max_replay_body moves the line.

const toM2 = { cookie: `${COOKIE}=m2` }

test('sticky sessions: 1,000,000 bytes are replayed, 1,000,001 bytes and a chunked body go direct', async (t) => {
  const { m1, m2 } = await startMachines(t, ['m1', 'm2'])
  const atLimit = await send(m1.address, '/app/upload', { body: randomBytes(MB), headers: toM2 })
  t.equal(atLimit.status, 307)
  t.equal(atLimit.headers['fly-replay'], 'instance=m2;state=nav-sticky;timeout=10s;fallback=force_self')

  const over = randomBytes(MB + 1)
  const direct = await send(m1.address, '/app/upload', { body: over, headers: toM2 })
  t.equal(direct.status, 200)
  t.equal(direct.headers['fly-replay'], undefined)
  t.match(direct.json(), { machine: 'm2', size: MB + 1, sha256: sha256(over) }, 'byte-identical, on the cookie\'s Machine')
  t.equal(direct.json().headers['x-navigator-via'], 'm1', 'marked with the Machine that proxied it')

  const small = randomBytes(10_000)
  const chunked = await send(m1.address, '/app/upload', { body: small, headers: toM2, chunked: true })
  t.equal(chunked.status, 200, 'a body of unknown length cannot be replayed, however small')
  t.match(chunked.json(), { machine: 'm2', size: small.length, sha256: sha256(small) })

  t.same(await served(m1), [], 'm1 served nothing itself')
  t.same(await served(m2), [`served m2 POST /app/upload ${MB + 1}`, 'served m2 POST /app/upload 10000'], 'm2 served each proxied request once')
})

test('replay rules: 1,000,000 bytes are replayed, 1,000,001 bytes go direct to the target', async (t) => {
  const { m1, m2 } = await startMachines(t, ['m1', 'm2'], { m1: { fly: ['replay:', '  - path: "^/api/"', '    machine: m2'] } })
  const own = { cookie: `${COOKIE}=m1` }
  const atLimit = await send(m1.address, '/api/orders', { body: randomBytes(MB), headers: own })
  t.equal(atLimit.status, 307)
  t.equal(atLimit.headers['fly-replay'], 'instance=m2;state=nav-rule')
  const over = randomBytes(MB + 1)
  const direct = await send(m1.address, '/api/orders', { body: over, headers: own })
  t.equal(direct.status, 200)
  t.match(direct.json(), { machine: 'm2', size: MB + 1, sha256: sha256(over) })
  t.equal(direct.json().headers['x-navigator-via'], 'm1')
  t.same(await served(m1), [])
  t.same(await served(m2), [`served m2 POST /api/orders ${MB + 1}`])
})

test('routes.fly.max_replay_body is honoured by sticky sessions and replay rules alike', async (t) => {
  const { m3, m4 } = await startMachines(t, ['m3', 'm4'], {
    m3: { fly: ['max_replay_body: 1000', 'replay:', '  - path: "^/api/"', '    machine: m4'] }
  })
  const toM4 = { cookie: `${COOKIE}=m4` }
  const stickyAt = await send(m3.address, '/app/form', { body: randomBytes(1000), headers: toM4 })
  t.equal(stickyAt.status, 307, 'sticky: 1000 bytes replayed')
  t.match(stickyAt.headers['fly-replay'], /^instance=m4;/)
  const stickyOver = await send(m3.address, '/app/form', { body: randomBytes(1001), headers: toM4 })
  t.equal(stickyOver.status, 200, 'sticky: 1001 bytes proxied')
  t.equal(stickyOver.json().machine, 'm4')
  const ruleAt = await send(m3.address, '/api/form', { body: randomBytes(1000), headers: { cookie: `${COOKIE}=m3` } })
  t.equal(ruleAt.status, 307, 'rule: 1000 bytes replayed')
  t.equal(ruleAt.headers['fly-replay'], 'instance=m4;state=nav-rule')
  const ruleOver = await send(m3.address, '/api/form', { body: randomBytes(1001), headers: { cookie: `${COOKIE}=m3` } })
  t.equal(ruleOver.status, 200, 'rule: 1001 bytes proxied')
  t.equal(ruleOver.json().machine, 'm4')
  t.same(await served(m3), [])
  t.same(await served(m4), ['served m4 POST /app/form 1001', 'served m4 POST /api/form 1001'])
})
