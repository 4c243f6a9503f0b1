import { connect } from 'node:net'
import { test } from 'tap'
import { http, startSite, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// Hostile input (issue 7): ambiguous request framing (request smuggling attempts) through the real navigator in
// front of a tenant. Navigator either refuses the request (400) or frames it one way and forwards it framed that
// same way: the tenant never sees both Content-Length and Transfer-Encoding, never a request Navigator did not
// answer for, and the smuggled request that follows is answered as its own request or not at all.

async function site (t: Parameters<typeof startSite>[0]): Promise<Running> {
  return await startSite(t, {
    server: ['  health_check: /up'],
    tenants: [tenant('app', '/app', 'start: eager')]
  }, { warm: ['/app/warm-up'] })
}

/** Sends bytes on one connection and returns everything received until the server closes it (bounded). */
async function converse (navigator: Running, bytes: string): Promise<string> {
  const url = new URL(navigator.address)
  return await new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname)
    const chunks: Buffer[] = []
    const done = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(Buffer.concat(chunks).toString('latin1'))
    }
    // A server still waiting for body bytes it was promised holds the connection: the answers so far are what counts.
    const timer = setTimeout(done, 3_000)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', done)
    socket.write(bytes, 'latin1')
  })
}

interface Seen { url: string, headers: Record<string, string> }

/** Splits a byte stream of responses; returns their statuses and what the tenant reported seeing (its JSON bodies). */
function responses (stream: string): { statuses: number[], seen: Seen[] } {
  const statuses: number[] = []
  const seen: Seen[] = []
  let rest = stream
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n')
    if (end === -1) break
    const head = rest.slice(0, end)
    statuses.push(Number(head.slice(9, 12)))
    const length = /\r\ncontent-length: (\d+)/i.exec(head)
    let body: string
    if (length !== null) {
      body = rest.slice(end + 4, end + 4 + Number(length[1]))
      rest = rest.slice(end + 4 + Number(length[1]))
    } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      body = ''
      let at = end + 4
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', at)
        const size = parseInt(rest.slice(at, lineEnd), 16)
        if (lineEnd === -1 || !Number.isInteger(size)) break
        if (size === 0) {
          at = lineEnd + 4
          break
        }
        body += rest.slice(lineEnd + 2, lineEnd + 2 + size)
        at = lineEnd + 2 + size + 2
      }
      rest = rest.slice(at)
    } else {
      body = rest.slice(end + 4)
      rest = ''
    }
    if (body.startsWith('{"pid"')) seen.push(JSON.parse(body) as Seen)
  }
  return { statuses, seen }
}

const SMUGGLED = 'GET /app/smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

const CASES: Record<string, string> = {
  'Content-Length and Transfer-Encoding both': 'POST /app/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding and Content-Length both': 'POST /app/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n',
  'two different Content-Lengths': 'POST /app/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n',
  'a Content-Length list': 'POST /app/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 44\r\n\r\n',
  'chunked, then identity': 'POST /app/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
  'an unknown transfer coding': 'POST /app/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding folded over two lines': 'POST /app/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n',
  'a space before the colon': 'POST /app/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
  'a chunk size that overflows': 'POST /app/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nx\r\n0\r\n\r\n',
  'a chunk extension with a line break': 'POST /app/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\nb\r\nx\r\n0\r\n\r\n',
  'bare LF line endings': 'POST /app/a HTTP/1.1\nHost: x\nContent-Length: 0\n\n',
  'a negative Content-Length': 'POST /app/a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
  'Host twice': 'GET /app/a HTTP/1.1\r\nHost: x\r\nHost: evil.test\r\n\r\n',
  'an absolute-form target for another host': 'GET http://evil.test/app/a HTTP/1.1\r\nHost: x\r\n\r\n',
  'HTTP/1.0 with keep-alive and a body': 'POST /app/a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc',
  'a GET with a body': 'GET /app/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
}

test('ambiguous request framing is refused or forwarded framed one way, never desynchronising the tenant', async (t) => {
  const navigator = await site(t)
  for (const [label, first] of Object.entries(CASES)) {
    const stream = await converse(navigator, first + SMUGGLED)
    const { statuses, seen } = responses(stream)
    t.ok(statuses.length > 0 || stream === '', `${label}: answered with HTTP or closed (${JSON.stringify(stream.slice(0, 60))})`)
    for (const request of seen) {
      const names = Object.keys(request.headers)
      t.notOk(names.includes('content-length') && names.includes('transfer-encoding'), `${label}: the tenant saw one framing for ${request.url}`)
    }
    // The tenant answered at most the requests Navigator answered, and the smuggled one only as a request of its own.
    t.ok(seen.length <= statuses.length, `${label}: ${seen.length} tenant answers for ${statuses.length} responses`)
    const smuggledAt = seen.findIndex((request) => request.url === '/app/smuggled')
    if (smuggledAt !== -1) t.equal(statuses.length, 2, `${label}: the smuggled request was answered as the second request`)
    t.comment(`${label}: statuses ${JSON.stringify(statuses)}, tenant saw ${JSON.stringify(seen.map((request) => request.url))}`)
  }
  t.equal(navigator.child.exitCode, null, 'still running')
  t.equal((await http(navigator.address, '/app/after')).status, 200, 'the tenant still answers')
})
