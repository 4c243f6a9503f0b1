import { test } from 'tap'
import { acceptedEncoding } from '../src/compress.js'
import { createUpstreamProxy } from '../src/proxy.js'

// The Accept-Encoding negotiation of compressed responses; the compression itself is tested through the real server
// (packages/server/test/compression.test.ts).

test('the encoding with the higher q-value wins, br on a tie, and q=0 refuses', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['gzip, deflate, br', 'br'],
    ['gzip, deflate, br, zstd', 'br'],
    ['gzip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['br', 'br'],
    ['GZip', 'gzip'],
    ['gzip;q=0, br', 'br'],
    ['br;q=0, gzip', 'gzip'],
    ['br;q=0', null],
    ['gzip;q=0.9, br;q=0.8', 'gzip'],
    ['gzip;q=0.8, br;q=0.8', 'br'],
    ['gzip ; q=1.0 , br ; q=0.5', 'gzip'],
    ['identity', null],
    ['deflate', null],
    ['', null],
    ['*', 'br'],
    ['*;q=0', null],
    ['br;q=0, *', 'gzip'],
    ['gzip;q=0, br;q=0, *', null],
    ['gzip;q=2', null],
    ['gzip;q=abc, br;q=0.1', 'br']
  ]
  for (const [header, expected] of cases) t.equal(acceptedEncoding(header), expected, JSON.stringify(header))
  t.equal(acceptedEncoding('br;q=0'), null, 'the same answer from the cache')
})

test('the proxy\'s compress option must be a boolean', async (t) => {
  t.throws(() => createUpstreamProxy({ compress: 'yes' as unknown as boolean }), { code: 'NAV_PROXY_INVALID_OPTION' })
  const proxy = createUpstreamProxy({ compress: true })
  await proxy.close()
})
