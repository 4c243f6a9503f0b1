import { test } from 'tap'
import { NAVIGATOR_VIA_HEADER } from '@navigator/fly-replay'
import {
  createCookieCodec, createDecider, createStaticDiscovery, DEFAULT_MAX_REPLAY_BODY, LEGACY_PROXIED_HEADER, noDiscovery,
  PREFERRED_UNAVAILABLE_HEADER, STICKY_REPLAY_STATE
} from '../src/index.js'

const context = { machineId: 'm1', codec: createCookieCodec(), discovery: noDiscovery, replayState: STICKY_REPLAY_STATE, maxReplayBody: DEFAULT_MAX_REPLAY_BODY }
const decide = createDecider(context)

test('no cookie: serve here and set the cookie', async (t) => {
  t.match(decide(undefined, {}), { kind: 'new', machine: 'm1' })
})

test('a cookie for this Machine: serve here (and re-set it)', async (t) => {
  t.match(decide('m1', {}), { kind: 'own', machine: 'm1' })
})

test('a cookie for another Machine: replay when replayable, proxy when not', async (t) => {
  t.match(decide('m2', {}), { kind: 'replay', machine: 'm2' })
  t.match(decide('m2', { 'content-length': '1000000' }), { kind: 'replay', machine: 'm2' }, '1 MB (1,000,000 bytes) is replayed')
  t.match(decide('m2', { 'content-length': '1000001' }), { kind: 'proxy', machine: 'm2' }, 'one byte more is not')
  t.match(decide('m2', { 'transfer-encoding': 'chunked' }), { kind: 'proxy', machine: 'm2' })
  const small = createDecider({ ...context, maxReplayBody: 100 })
  t.match(small('m2', { 'content-length': '100' }), { kind: 'replay' }, 'maxReplayBody is honoured')
  t.match(small('m2', { 'content-length': '101' }), { kind: 'proxy' })
})

test('another Machine known to be unavailable: fly-replay-failed, or our own replay or direct proxy coming back', async (t) => {
  t.match(decide('m2', { 'fly-replay-failed': 'instance=m2;reason=timeout' }), { kind: 'unavailable', machine: 'm2' })
  t.match(decide('m2', { 'fly-replay-src': `instance=m1;region=ord;t=1;state=${STICKY_REPLAY_STATE}` }), { kind: 'unavailable', machine: 'm2' })
  t.match(decide('m2', { 'fly-replay-src': 'instance=m1;state=somebody-else' }), { kind: 'replay' }, 'another replay state is not ours')
  t.match(decide('m2', { [PREFERRED_UNAVAILABLE_HEADER]: 'm2' }), { kind: 'unavailable', machine: 'm2' }, 'Fly could not deliver a prefer_instance replay')
  t.match(decide('m2', { [LEGACY_PROXIED_HEADER]: 'm3', 'transfer-encoding': 'chunked' }), { kind: 'unavailable', machine: 'm2' }, 'an older release\'s direct proxy landing on the wrong Machine')
  t.match(decide('m1', { 'fly-replay-failed': 'instance=m2' }), { kind: 'own' }, 'a cookie for here is served here regardless')
  t.match(decide('m1', { [PREFERRED_UNAVAILABLE_HEADER]: 'm2' }), { kind: 'own' })
})

test('a request another Machine proxied here (x-navigator-via) is served here, its cookie left alone, never sent on', async (t) => {
  t.match(decide('m2', { [NAVIGATOR_VIA_HEADER]: 'm3' }), { kind: 'routed', machine: 'm2' })
  t.match(decide('m2', { [NAVIGATOR_VIA_HEADER]: 'm3', 'transfer-encoding': 'chunked' }), { kind: 'routed', machine: 'm2' }, 'not proxied either')
  t.match(decide('m1', { [NAVIGATOR_VIA_HEADER]: 'm3' }), { kind: 'own' })
  t.match(decide(undefined, { [NAVIGATOR_VIA_HEADER]: 'm3' }), { kind: 'new' })
})

test('a malformed cookie or one naming a Machine discovery knows is gone: reassigned with a reason', async (t) => {
  t.match(decide('M2', {}), { kind: 'rejected', machine: 'm1', rejection: 'malformed' })
  const withPeers = createDecider({ ...context, discovery: createStaticDiscovery(['m1', 'm2']) })
  t.match(withPeers('m3', {}), { kind: 'rejected', machine: 'm1', rejection: 'machine-unknown' })
  t.match(withPeers('m2', {}), { kind: 'replay', machine: 'm2' })
})
