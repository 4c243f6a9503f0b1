import { randomBytes } from 'node:crypto'
import { test } from 'tap'
import { http, startNavigator, tempDir } from './helpers.js'

// Dotfiles in public_dir (issue 18, item 8), against the real navigator process: `.env` or a `.git` folder left in
// public_dir are not served unless `server.static.allow_dotfiles` says so; `.well-known/` always is.

const SECRET = `SECRET-${randomBytes(12).toString('hex')}`

function files (allow: boolean | null): Record<string, string> {
  return {
    'navigator.yml': ['server:', '  listen: "127.0.0.1:0"', ...allow === null ? [] : ['  static:', `    allow_dotfiles: ${String(allow)}`], ''].join('\n'),
    'public/.env': `TOKEN=${SECRET}\n`,
    'public/.git/config': `[core] ${SECRET}\n`,
    'public/.well-known/acme-challenge/token': 'challenge answer\n',
    'public/ok.txt': 'public file\n'
  }
}

test('by default a dotfile or dot folder in public_dir is not served; .well-known is', async (t) => {
  const navigator = await startNavigator(t, tempDir(files(null)))
  for (const path of ['/.env', '/.git/config', '/%2eenv', '/%2Egit/config', '/sub/../.env', '/.ENV']) {
    const answer = await http(navigator.address, path)
    t.equal(answer.status, 404, `${path}: not a static file (nothing else serves it here)`)
    t.notOk(answer.text.includes(SECRET), `${path}: nothing of it`)
  }
  t.equal((await http(navigator.address, '/.well-known/acme-challenge/token')).text, 'challenge answer\n', '.well-known is served')
  t.equal((await http(navigator.address, '/ok.txt')).text, 'public file\n')
})

test('allow_dotfiles: true serves them; false is the default written out', async (t) => {
  const allowed = await startNavigator(t, tempDir(files(true)))
  t.equal((await http(allowed.address, '/.env')).text, `TOKEN=${SECRET}\n`)
  t.equal((await http(allowed.address, '/.git/config')).status, 200)
  const refused = await startNavigator(t, tempDir(files(false)))
  t.equal((await http(refused.address, '/.env')).status, 404)
})
