import { randomBytes } from 'node:crypto'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { test } from 'tap'
import fc from 'fast-check'
import { startNavigator, tempDir } from './helpers.js'
import type { Running } from './helpers.js'

// Hostile input (issue 7): path traversal against the static files of the real navigator process. Secret files are
// planted next to public_dir, in a sibling folder whose name starts like it, and behind symbolic links inside it;
// no request target (encoded, double-encoded, overlong UTF-8, backslashes, NUL, `..;/`, absolute, very long)
// ever brings their content back, while the files inside public_dir are still served.

const SECRET = `SECRET-${randomBytes(12).toString('hex')}`

async function site (t: Parameters<typeof startNavigator>[0]): Promise<{ navigator: Running, dir: string }> {
  const dir = tempDir({
    'navigator.yml': [
      'server:',
      '  listen: "127.0.0.1:0"',
      '  static:',
      '    public_dir: public',
      'routes:',
      '  rewrites:',
      '    - pattern: "^/assets/(.*)"',
      '      rewrite: "/$1"',
      `# ${SECRET}`,
      ''
    ].join('\n'),
    'public/ok.txt': 'public file\n',
    'public/sub/a.txt': 'nested public file\n',
    'public/index.html': '<h1>index</h1>\n',
    'secret.txt': SECRET,
    'publicx/secret.txt': SECRET,
    'public.txt': SECRET
  })
  mkdirSync(join(dir, 'outside'))
  writeFileSync(join(dir, 'outside', 'secret.txt'), SECRET)
  symlinkSync(join(dir, 'secret.txt'), join(dir, 'public', 'link.txt'))
  symlinkSync(join(dir, 'outside'), join(dir, 'public', 'linkdir'))
  symlinkSync('../secret.txt', join(dir, 'public', 'relative-link.txt'))
  const navigator = await startNavigator(t, dir)
  return { navigator, dir }
}

/** Sends a request with `target` exactly as given (no normalisation) and returns everything received. */
async function get (navigator: Running, target: string, method = 'GET', extra = ''): Promise<string> {
  const url = new URL(navigator.address)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer for ${JSON.stringify(target.slice(0, 100))} within 10 s`))
    }, 10_000)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('latin1'))
    })
    socket.write(Buffer.concat([
      Buffer.from(`${method} `, 'latin1'),
      Buffer.from(target, 'utf8'),
      Buffer.from(` HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n${extra}\r\n`, 'latin1')
    ]))
  })
}

function statusOf (answer: string): number {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(answer)
  return match === null ? 0 : Number(match[1])
}

test('the files inside public_dir are served, also percent-encoded and through a rewrite', async (t) => {
  const { navigator } = await site(t)
  for (const target of ['/ok.txt', '/%6fk.txt', '/sub/a.txt', '/sub/./a.txt', '/sub//a.txt', '/assets/ok.txt', '/']) {
    const answer = await get(navigator, target)
    t.equal(statusOf(answer), 200, target)
  }
})

test('hand-picked traversal attempts never return a file outside public_dir', async (t) => {
  const { navigator, dir } = await site(t)
  const targets = [
    '/../secret.txt', '/../../secret.txt', '/sub/../../secret.txt', '/./../secret.txt', '/ok.txt/../../secret.txt',
    '/..%2fsecret.txt', '/%2e%2e/secret.txt', '/%2e%2e%2fsecret.txt', '/%2E%2E%2Fsecret.txt', '/sub/%2e%2e/%2e%2e/secret.txt',
    '/%252e%252e%252fsecret.txt', '/..%252fsecret.txt', '/%25%32%65%25%32%65/secret.txt',
    '/%c0%ae%c0%ae/secret.txt', '/%c0%ae%c0%ae%c0%afsecret.txt', '/%e0%80%ae%e0%80%ae/secret.txt', '/%c1%9c..%c1%9csecret.txt',
    '/%ef%bc%8e%ef%bc%8e/secret.txt', '/\uff0e\uff0e/secret.txt',
    '/..\\secret.txt', '/..%5csecret.txt', '/%5c..%5csecret.txt', '/sub\\..\\..\\secret.txt', '/..%255csecret.txt',
    '/secret.txt%00', '/ok.txt%00/../../secret.txt', '/..%00/secret.txt', '/%00../secret.txt',
    '/..;/secret.txt', '/sub/..;/..;/secret.txt', '/;/../secret.txt', '/..%3b/secret.txt',
    join(dir, 'secret.txt'), '/' + join(dir, 'secret.txt'), `/${encodeURIComponent(join(dir, 'secret.txt'))}`,
    `file://${join(dir, 'secret.txt')}`, 'http://hostile.test/../secret.txt', 'http://hostile.test/%2e%2e/secret.txt',
    '/../publicx/secret.txt', '/%2e%2e/publicx/secret.txt', '/../public.txt', '/..%2fpublic.txt',
    '/link.txt', '/relative-link.txt', '/linkdir/secret.txt', '/linkdir/', '/linkdir',
    '/assets/../secret.txt', '/assets/..%2fsecret.txt', '/assets/%2e%2e/secret.txt',
    '/navigator.yml', '/../navigator.yml', '/%2e%2e/navigator.yml',
    '/' + '../'.repeat(2_000) + 'secret.txt', '/' + '%2e%2e%2f'.repeat(1_000) + 'secret.txt',
    '/' + 'a/'.repeat(5_000) + '../'.repeat(5_001) + 'secret.txt', '/' + 'x'.repeat(100_000)
  ]
  let refused = 0
  for (const target of targets) {
    for (const method of ['GET', 'HEAD']) {
      const answer = await get(navigator, target, method, method === 'GET' ? 'Range: bytes=0-\r\n' : '')
      const status = statusOf(answer)
      t.notOk(answer.includes(SECRET), `${method} ${target.slice(0, 80)}: no secret (${status})`)
      t.not(status, 0, `${method} ${target.slice(0, 80)}: an HTTP answer`)
      if (status === 200 || status === 206) t.fail(`${method} ${target.slice(0, 80)} answered ${status}`)
      else refused++
    }
  }
  t.equal(refused, targets.length * 2)
  t.equal(navigator.child.exitCode, null, 'still running')
})

test('fuzzed combinations of traversal pieces never return a file outside public_dir', async (t) => {
  const { navigator } = await site(t)
  const piece = fc.constantFrom('..', '.', '%2e%2e', '%2e', '%252e%252e', '%c0%ae%c0%ae', '%2f', '%252f', '%5c', '\\', '%00',
    ';', '..;', '%3b', 'sub', 'ok.txt', 'linkdir', 'link.txt', 'secret.txt', 'publicx', 'public.txt', '', '%', '%zz', '/', '//')
  const targets = fc.sample(fc.array(piece, { minLength: 1, maxLength: 8 }).map((pieces) => '/' + pieces.join('/')),
    { numRuns: 1_000, seed: 7 })
  const counts = new Map<number, number>()
  let index = 0
  const worker = async (): Promise<void> => {
    while (index < targets.length) {
      const target = targets[index++]
      const answer = await get(navigator, target)
      const status = statusOf(answer)
      counts.set(status, (counts.get(status) ?? 0) + 1)
      if (answer.includes(SECRET)) t.fail(`${target}: the secret came back`)
      if (status === 0) t.fail(`${target}: no HTTP answer`)
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(counts))}`)
  t.ok((counts.get(200) ?? 0) > 0, 'some targets did reach files inside public_dir')
  t.equal(navigator.child.exitCode, null, 'still running')
})
