import { randomBytes } from 'node:crypto'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { test } from 'tap'
import { http, startNavigator, tempDir } from './helpers.js'

// Precompressed siblings (issue 18, item 3), against the real navigator process: @fastify/static sends `file.gz` or
// `file.br` in place of `file` when the client accepts that encoding, so a sibling that is a symbolic link out of
// public_dir must never be what is sent; the file itself still is, and a sibling inside public_dir still works.

const SECRET = `SECRET-${randomBytes(12).toString('hex')}`

test('a precompressed sibling that links outside public_dir is never sent; the file itself is, uncompressed', async (t) => {
  const dir = tempDir({
    'navigator.yml': 'server:\n  listen: "127.0.0.1:0"\n',
    'public/pc.txt': 'the public text\n',
    'public/ok.css': 'body { color: red }\n',
    'public/ok.css.gz': gzipSync('body { color: red }\n')
  })
  mkdirSync(join(dir, 'outside'))
  writeFileSync(join(dir, 'outside', 'secret.gz'), gzipSync(SECRET))
  writeFileSync(join(dir, 'outside', 'secret.br'), SECRET)
  symlinkSync(join(dir, 'outside', 'secret.gz'), join(dir, 'public', 'pc.txt.gz'))
  symlinkSync(join(dir, 'outside', 'secret.br'), join(dir, 'public', 'pc.txt.br'))
  const navigator = await startNavigator(t, dir)

  for (const encoding of ['gzip', 'br', 'br, gzip', 'gzip;q=1, br;q=0.5', '*']) {
    const answer = await http(navigator.address, '/pc.txt', { headers: { 'accept-encoding': encoding } })
    t.equal(answer.status, 200, `${encoding}: served`)
    t.equal(answer.headers['content-encoding'], undefined, `${encoding}: not encoded`)
    t.equal(answer.text, 'the public text\n', `${encoding}: the file itself`)
    t.notOk(answer.text.includes(SECRET) || gunzipSafe(answer.body).includes(SECRET), `${encoding}: nothing of the outside file`)
  }
  for (const sibling of ['/pc.txt.gz', '/pc.txt.br']) {
    const answer = await http(navigator.address, sibling)
    t.notOk(answer.text.includes(SECRET) || gunzipSafe(answer.body).includes(SECRET), `${sibling} asked for directly: not sent`)
  }
  const warnings = navigator.logs.filter((line) => String(line.msg).includes('precompressed sibling leads outside'))
  t.equal(warnings.length, 1, 'said once, for the file')

  const legit = await http(navigator.address, '/ok.css', { headers: { 'accept-encoding': 'gzip' } })
  t.equal(legit.headers['content-encoding'], 'gzip', 'a sibling inside public_dir is still sent precompressed')
  t.equal(gunzipSync(legit.body).toString(), 'body { color: red }\n')
})

function gunzipSafe (body: Buffer): string {
  try {
    return gunzipSync(body).toString()
  } catch {
    return ''
  }
}
