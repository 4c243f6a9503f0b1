import { test } from 'tap'
import { createDnsDiscovery, createStaticDiscovery, DEFAULT_COOKIE_NAME, EXTRA_REFRESH_INTERVAL_MS, noDiscovery } from '../src/index.js'
import { build } from './helpers.js'

test('DNS discovery reads Machine IDs from the all.vms.<app>.internal TXT record', async (t) => {
  const asked: string[] = []
  const discovery = createDnsDiscovery({
    appName: 'web',
    resolveTxt: async (hostname) => {
      asked.push(hostname)
      return [['3d8d9930be6e89 ord,148ed726c67189 iad'], ['e784079b449483 ', 'ams']]
    }
  })
  t.teardown(() => discovery.close())
  t.equal(discovery.has('3d8d9930be6e89'), undefined, 'unknown until the first answer')
  await discovery.refresh()
  t.equal(asked[0], 'all.vms.web.internal')
  t.equal(discovery.has('3d8d9930be6e89'), true)
  t.equal(discovery.has('148ed726c67189'), true)
  t.equal(discovery.has('e784079b449483'), true)
  t.equal(discovery.has('gone0000000000'), false)
})

test('DNS discovery keeps the last answer when a lookup fails, and says unknown before any answer', async (t) => {
  let fail = false
  let calls = 0
  const warnings: unknown[] = []
  const discovery = createDnsDiscovery({
    appName: 'web',
    resolveTxt: async () => {
      calls++
      if (fail) throw Object.assign(new Error('queryTxt ESERVFAIL'), { code: 'ESERVFAIL' })
      return [['m1 ord,m2 iad']]
    },
    log: { warn: (...args: unknown[]) => warnings.push(args), info: () => {} } as never
  })
  t.teardown(() => discovery.close())
  await discovery.refresh()
  fail = true
  const before = calls
  t.equal(discovery.has('m9'), false)
  await discovery.refresh()
  t.ok(calls > before, 'a miss or a refresh asks again')
  t.equal(discovery.has('m2'), true, 'stale on error')
  t.equal(warnings.length, 1, 'the failure is logged once, not per lookup')

  const never = createDnsDiscovery({ appName: 'web', resolveTxt: async () => { throw new Error('down') } })
  t.teardown(() => never.close())
  await never.refresh()
  t.equal(never.has('m2'), undefined, 'no answer yet: every well-formed ID is taken as existing')
})

test('static discovery knows exactly its peers; none knows nothing', async (t) => {
  const peers = createStaticDiscovery(['m1', 'm2'])
  t.equal(peers.has('m2'), true)
  t.equal(peers.has('m3'), false)
  t.equal(noDiscovery.has('m3'), undefined)
})

test('refreshNow looks again at once, but at most once a second however often it is asked; one asked too soon runs when the second is over', async (t) => {
  let calls = 0
  let answer = [['m1 ord,m2 iad']]
  const discovery = createDnsDiscovery({ appName: 'web', resolveTxt: async () => { calls++; return answer } })
  t.teardown(() => discovery.close())
  await discovery.refresh()
  t.equal(calls, 1)
  answer = [['m1 ord']]
  const asked = Date.now()
  for (let i = 0; i < 1000; i++) discovery.refreshNow()
  t.equal(calls, 1, 'within the second after a lookup: no new lookup yet, whatever the flood')
  t.equal(discovery.has('m2'), true)
  while (calls < 2 && Date.now() - asked < 5_000) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(calls, 2, 'once the second is over: exactly one, for the whole flood')
  t.ok(Date.now() - asked >= EXTRA_REFRESH_INTERVAL_MS - 50, 'not before the second was over')
  await new Promise((resolve) => setTimeout(resolve, EXTRA_REFRESH_INTERVAL_MS + 50))
  t.equal(calls, 2, 'nothing more was asked, nothing more was looked up')
  t.equal(discovery.has('m2'), false, 'its answer is used')
  t.equal(calls, 3, 'and the ID it lacks is looked up again at once, a second after the last lookup')
})

test('a fly-replay-failed with reason=no_candidate makes discovery look again; other reasons do not', async (t) => {
  const refreshed: string[] = []
  const discovery = { has: () => true, refreshNow: () => { refreshed.push('now') } }
  const { app } = await build(t, { discovery })
  const cookie = `${DEFAULT_COOKIE_NAME}=m2`
  const timeout = await app.inject({ url: '/', headers: { cookie, 'fly-replay-failed': 'instance=m2;reason=timeout' } })
  t.equal(timeout.statusCode, 503)
  t.same(refreshed, [], 'a timeout says nothing about which Machines exist')
  const none = await app.inject({ url: '/', headers: { cookie, 'fly-replay-failed': 'instance=m2;reason=no_candidate;elapsed_ms=3' } })
  t.equal(none.statusCode, 503, 'the request itself gets fallbackMode')
  t.same(refreshed, ['now'])
})
