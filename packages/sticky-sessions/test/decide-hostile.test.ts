import { test } from 'tap'
import fc from 'fast-check'
import { NAVIGATOR_VIA_HEADER, RULES_REPLAY_STATE } from '@navigator/fly-replay'
import {
  createCookieCodec, createDecider, createStaticDiscovery, DEFAULT_MAX_REPLAY_BODY, LEGACY_PROXIED_HEADER,
  PREFERRED_UNAVAILABLE_HEADER, STICKY_REPLAY_STATE
} from '../src/index.js'

// Hostile input (issue 7): forged routing headers against the decision itself. Whatever a request carries, the
// decision only ever names this Machine or the cookie's own Machine, and a request that Navigator replayed once
// (any `nav-` state), that Fly handed back or could not deliver, or that was proxied once (`x-navigator-via`) is
// never sent anywhere again.

const decide = createDecider({
  machineId: 'm1',
  codec: createCookieCodec(),
  discovery: createStaticDiscovery(['m1', 'm2', 'm3']),
  replayState: STICKY_REPLAY_STATE,
  maxReplayBody: DEFAULT_MAX_REPLAY_BODY
})

test('a request a replay rule sent here is served here and its cookie left alone, not replayed again', async (t) => {
  const replayedByRule = { 'fly-replay-src': `instance=m3;region=ord;t=1;state=${RULES_REPLAY_STATE}` }
  t.match(decide('m2', replayedByRule), { kind: 'routed', machine: 'm2' })
  t.match(decide('m2', { ...replayedByRule, 'content-length': '2000000' }), { kind: 'routed', machine: 'm2' }, 'not proxied either')
  t.match(decide('m1', replayedByRule), { kind: 'own' })
  t.match(decide('m2', { 'fly-replay-src': 'state=nav-anything-else' }), { kind: 'routed' })
  t.match(decide('m2', { 'fly-replay-src': 'state=navigator' }), { kind: 'replay' }, 'only the nav- prefix is Navigator\'s')
})

test('forged routing headers never lead to a second replay or hop, nor to a Machine the headers name', async (t) => {
  const id = fc.constantFrom('m1', 'm2', 'm3', 'm4', 'EVIL', '')
  const state = fc.constantFrom(STICKY_REPLAY_STATE, RULES_REPLAY_STATE, 'nav-x', 'navx', 'other', '')
  const src = fc.tuple(id, state, fc.constantFrom(';', ';;', ' ; ')).map(([i, s, sep]) => `instance=${i}${sep}state=${s}`)
  const headers = fc.record({
    'fly-replay-src': src,
    'fly-replay-failed': id.map((i) => `instance=${i};reason=timeout`),
    [LEGACY_PROXIED_HEADER]: id,
    [NAVIGATOR_VIA_HEADER]: id,
    [PREFERRED_UNAVAILABLE_HEADER]: id,
    'content-length': fc.constantFrom('0', '10', '1000000', '1000001', 'x')
  }, { requiredKeys: [] })
  const cookie = fc.option(fc.oneof(id, fc.string({ maxLength: 70 })), { nil: undefined })
  fc.assert(fc.property(cookie, headers, (value, request) => {
    const decision = decide(value, request)
    const target = value !== undefined && createCookieCodec().decode(value)
    if (decision.machine !== 'm1' && decision.machine !== target) return false
    if (decision.kind !== 'replay' && decision.kind !== 'proxy') return true
    const state = /state=([^;\s]*)/.exec(request['fly-replay-src'] ?? '')?.[1] ?? ''
    return request['fly-replay-failed'] === undefined && request[LEGACY_PROXIED_HEADER] === undefined &&
      request[NAVIGATOR_VIA_HEADER] === undefined && request[PREFERRED_UNAVAILABLE_HEADER] === undefined && !state.startsWith('nav-')
  }), { numRuns: 10_000, seed: 7 })
  t.pass('10000 forged header sets')
})
