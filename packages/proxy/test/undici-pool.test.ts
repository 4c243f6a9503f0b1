import { test } from 'tap'
import { createRequire } from 'node:module'
import { Pool as PublicPool } from 'undici'
import { Pool, UNDICI_POOL_FILE } from '../src/undici-pool.js'

// The proxy loads undici's Pool from a private file of the package, to leave the rest of undici unloaded. If an
// upgrade of undici moves that file or changes what it exports, this test says so before any request can fail.

test('the private pool file is the very Pool class undici exports publicly', async (t) => {
  t.equal(Pool, PublicPool, 'the same class object: nothing else differs')
  t.equal(typeof Pool.prototype.dispatch, 'function')
  t.equal(typeof Pool.prototype.close, 'function')
  t.match(createRequire(import.meta.url).resolve(UNDICI_POOL_FILE), /undici[\\/]lib[\\/]dispatcher[\\/]pool\.js$/)
})
