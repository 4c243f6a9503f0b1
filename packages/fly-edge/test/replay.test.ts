import { test } from 'tap'
import {
  formatReplayFailed,
  formatReplaySrc,
  parseReplayAnswer,
  parseReplayJson
} from '../src/replay.js'
import { regionMatches } from '../src/regions.js'

test('the fly-replay header parser reads every field, quoted region lists and Go durations', async (t) => {
  t.same(parseReplayAnswer('instance=d8e7a1b2c3d4e5;state=abc;timeout=10s;fallback=force_self'), {
    elsewhere: false, instance: 'd8e7a1b2c3d4e5', state: 'abc', timeoutMs: 10_000, fallback: 'force_self'
  })
  t.same(parseReplayAnswer('region="sjc,any";app=target-app'), {
    elsewhere: false, regions: ['sjc', 'any'], app: 'target-app'
  })
  t.same(parseReplayAnswer('prefer_instance=abc; elsewhere=true; timeout=800ms; fallback=prefer_self'), {
    elsewhere: true, preferInstance: 'abc', timeoutMs: 800, fallback: 'prefer_self'
  })
  t.same(parseReplayAnswer('elsewhere=true'), { elsewhere: true })
  t.same(parseReplayAnswer('instance=m1;timeout=1m30s'), { elsewhere: false, instance: 'm1', timeoutMs: 90_000 })
})

test('a fly-replay header without a valid target is refused, and invalid parts are left out', async (t) => {
  for (const bad of ['', 'state=only', 'instance', 'instance=a b', 'region=SJC!', 'app=Bad_App', 'elsewhere=yes']) {
    t.equal(parseReplayAnswer(bad), null, JSON.stringify(bad))
  }
  t.same(parseReplayAnswer('instance=a;timeout=10;fallback=elsewhere;state=x y'), { elsewhere: false, instance: 'a' })
})

test('the JSON replay form reads the same fields and a transform', async (t) => {
  t.same(parseReplayJson(JSON.stringify({
    instance: 'm1',
    timeout: '2s',
    fallback: 'force_self',
    elsewhere: true,
    region: ['ord', 'any'],
    transform: { path: '/other?x=1', delete_headers: ['X-Drop'], set_headers: [{ name: 'X-Set', value: 'v' }] }
  })), {
    elsewhere: true,
    instance: 'm1',
    timeoutMs: 2000,
    fallback: 'force_self',
    regions: ['ord', 'any'],
    transform: { path: '/other?x=1', deleteHeaders: ['x-drop'], setHeaders: [{ name: 'x-set', value: 'v' }] }
  })
  t.equal(parseReplayJson('not json'), null)
  t.equal(parseReplayJson('{"state":"x"}'), null, 'no target')
  t.equal(parseReplayJson('{"instance":"m1","transform":{"set_headers":[{"name":"x","value":"a\\r\\nb"}]}}'), null)
})

test('the JSON form\'s cache.invalidate asks the edge to forget the cached replay; cache.prefix alone changes nothing', async (t) => {
  t.equal(parseReplayJson('{"app":"origin","cache":{"invalidate":true}}')?.cacheInvalidate, true)
  t.equal(parseReplayJson('{"app":"origin","cache":{"prefix":"/x/*","ttl":60}}')?.cacheInvalidate, undefined)
})

test('fly-replay-src and fly-replay-failed carry the documented fields', async (t) => {
  t.equal(formatReplaySrc({ instance: 'm1', region: 'ord', state: 's' }, 123), 'instance=m1;region=ord;t=123;state=s')
  t.equal(formatReplaySrc({ instance: 'm1', region: 'ord' }, 5), 'instance=m1;region=ord;t=5')
  t.equal(formatReplayFailed({
    instance: 'm2', app: 'demo', region: '', replaySource: 'm1', reason: 'timeout', elapsedMs: 12.4
  }), 'instance=m2;app=demo;region=;replay_source=m1;reason=timeout;elapsed_ms=12')
})

test('region aliases and any match the regions they stand for', async (t) => {
  t.ok(regionMatches('any', 'syd'))
  t.ok(regionMatches('ord', 'ord'))
  t.ok(regionMatches('us', 'ord'))
  t.ok(regionMatches('eu', 'fra'))
  t.notOk(regionMatches('eu', 'ord'))
  t.notOk(regionMatches('ams', 'ord'))
})
