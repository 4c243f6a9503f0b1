import { test } from 'tap'
import { createCookieCodec, createDecider, createStaticDiscovery, noDiscovery, PROXIED_HEADER, STICKY_REPLAY_STATE } from '../src/index.js'

const decide = createDecider({ machineId: 'm1', codec: createCookieCodec(), discovery: noDiscovery, replayState: STICKY_REPLAY_STATE })

test('no cookie: serve here and set the cookie', async (t) => {
  t.match(decide(undefined, {}), { kind: 'new', machine: 'm1' })
})

test('a cookie for this Machine: serve here (and re-set it)', async (t) => {
  t.match(decide('m1', {}), { kind: 'own', machine: 'm1' })
})

test('a cookie for another Machine: replay when replayable, proxy when not', async (t) => {
  t.match(decide('m2', {}), { kind: 'replay', machine: 'm2' })
  t.match(decide('m2', { 'content-length': '1048575' }), { kind: 'replay', machine: 'm2' })
  t.match(decide('m2', { 'content-length': '1048576' }), { kind: 'proxy', machine: 'm2' })
  t.match(decide('m2', { 'transfer-encoding': 'chunked' }), { kind: 'proxy', machine: 'm2' })
})

test('another Machine known to be unavailable: fly-replay-failed, or our own replay or direct proxy coming back', async (t) => {
  t.match(decide('m2', { 'fly-replay-failed': 'instance=m2;reason=timeout' }), { kind: 'unavailable', machine: 'm2' })
  t.match(decide('m2', { 'fly-replay-src': `instance=m1;region=ord;t=1;state=${STICKY_REPLAY_STATE}` }), { kind: 'unavailable', machine: 'm2' })
  t.match(decide('m2', { 'fly-replay-src': 'instance=m1;state=somebody-else' }), { kind: 'replay' }, 'another replay state is not ours')
  t.match(decide('m2', { [PROXIED_HEADER]: 'm3', 'transfer-encoding': 'chunked' }), { kind: 'unavailable', machine: 'm2' }, 'our direct proxy landing on the wrong Machine')
  t.match(decide('m1', { 'fly-replay-failed': 'instance=m2' }), { kind: 'own' }, 'a cookie for here is served here regardless')
})

test('a malformed cookie or one naming a Machine discovery knows is gone: reassigned with a reason', async (t) => {
  t.match(decide('M2', {}), { kind: 'rejected', machine: 'm1', rejection: 'malformed' })
  const withPeers = createDecider({
    machineId: 'm1', codec: createCookieCodec(), discovery: createStaticDiscovery(['m1', 'm2']), replayState: STICKY_REPLAY_STATE
  })
  t.match(withPeers('m3', {}), { kind: 'rejected', machine: 'm1', rejection: 'machine-unknown' })
  t.match(withPeers('m2', {}), { kind: 'replay', machine: 'm2' })
})
