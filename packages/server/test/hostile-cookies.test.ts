import { connect } from 'node:net'
import { test } from 'tap'
import type { Test } from 'tap'
import fc from 'fast-check'
import { freePort, http, startSite, tenant } from './helpers.js'
import type { Running } from './helpers.js'

// Hostile input (issue 7): fuzzed Cookie headers, sent as raw bytes to the real navigator process with sticky
// sessions on. Whatever arrives (huge, thousands of cookies, malformed, duplicated names, our cookie twice with
// different values, non-ASCII, NUL/CR/LF), the process keeps running, every answer is a well-formed HTTP/1.1
// response, and nothing the client sent in its Cookie header comes back in a response header.

const MACHINE = 'm1'
const OTHER = 'm2'
const COOKIE = '_navigator_machine'
/** Every value the fuzzer makes up carries this mark, so an echo into a response header can be recognised. */
const MARK = 'zqx'

async function site (t: Test): Promise<Running> {
  // The tenant answers before the fuzzing starts, so every answer below is about the cookie, not about a start-up.
  return await startSite(t, {
    server: ['  health_check: /up'],
    routes: [
      '  fly:',
      '    sticky_sessions:',
      '      enabled: true',
      `      cookie_name: ${COOKIE}`,
      '      paths: ["/app/*"]',
      '      peers:',
      `        ${MACHINE}: "http://127.0.0.1:1"`,
      `        ${OTHER}: "http://127.0.0.1:${await freePort()}"`
    ],
    tenants: [tenant('app', '/app', 'start: eager')]
  }, { env: { FLY_MACHINE_ID: MACHINE, FLY_APP_NAME: 'hostile', FLY_REGION: 'ord' }, warm: ['/app/warm-up'] })
}

interface Parsed {
  status: number
  headers: Array<[string, string]>
  body: Buffer
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// Field values: visible ASCII, space, tab and obs-text; never NUL, CR, LF or another control character.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/** Parses one complete HTTP/1.1 response (the connection was closed after it); throws when it is malformed. */
function parseResponse (raw: Buffer, method: string): Parsed {
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) throw new Error(`no end of headers in ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`)
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const status = /^HTTP\/1\.1 ([1-5]\d\d) [^\r\n]*$/.exec(statusLine)
  if (status === null) throw new Error(`bad status line ${JSON.stringify(statusLine)}`)
  const headers: Array<[string, string]> = []
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon)
    const value = line.slice(colon + 1).trim()
    if (colon <= 0 || !TOKEN.test(name) || !FIELD_VALUE.test(value)) throw new Error(`bad header line ${JSON.stringify(line)}`)
    headers.push([name.toLowerCase(), value])
  }
  let body = raw.subarray(end + 4)
  const length = headers.filter(([name]) => name === 'content-length')
  const chunked = headers.some(([name, value]) => name === 'transfer-encoding' && /chunked/i.test(value))
  if (length.length > 1) throw new Error('several Content-Length headers')
  if (method === 'HEAD' || status[1] === '304' || status[1] === '204') {
    if (body.length !== 0) throw new Error('a body where none may be')
  } else if (chunked) {
    const chunks: Buffer[] = []
    let at = 0
    for (;;) {
      const lineEnd = body.indexOf('\r\n', at)
      if (lineEnd === -1) throw new Error('truncated chunked body')
      const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16)
      if (!Number.isInteger(size)) throw new Error('bad chunk size')
      if (size === 0) break
      chunks.push(body.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
    }
    body = Buffer.concat(chunks)
  } else if (length.length === 1) {
    if (Number(length[0][1]) !== body.length) throw new Error(`Content-Length ${length[0][1]} but ${body.length} bytes`)
  }
  return { status: Number(status[1]), headers, body }
}

/** Sends raw request bytes (with Connection: close) and resolves with the bytes received until the server closed. */
async function rawRequest (navigator: Running, bytes: Buffer): Promise<Buffer> {
  const url = new URL(navigator.address)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('no answer within 10 s'))
    }, 10_000)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    })
    // Not half-closed: Node's http server drops a pending answer when the client ends its side first.
    socket.write(bytes)
  })
}

function request (method: string, path: string, cookieHeaders: Buffer[]): Buffer {
  return Buffer.concat([
    Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: hostile.test\r\nConnection: close\r\n`, 'latin1'),
    ...cookieHeaders.flatMap((value) => [Buffer.from('Cookie: ', 'latin1'), value, Buffer.from('\r\n', 'latin1')]),
    Buffer.from('\r\n', 'latin1')
  ])
}

/** Checks one exchange; returns the response for further checks. */
async function check (t: Test, navigator: Running, method: string, path: string, cookies: Buffer[], label: string): Promise<Parsed | null> {
  const raw = await rawRequest(navigator, request(method, path, cookies))
  let parsed: Parsed
  try {
    parsed = parseResponse(raw, method)
  } catch (err) {
    t.fail(`${label}: ${(err as Error).message}; request ${JSON.stringify(request(method, path, cookies).toString('latin1').slice(0, 300))}`)
    return null
  }
  const echoed = parsed.headers.filter(([, value]) => value.includes(MARK))
  if (echoed.length > 0) t.fail(`${label}: echoed into ${JSON.stringify(echoed)}`)
  return parsed
}

// Building blocks of hostile Cookie headers (bytes, so that non-UTF-8 and control characters can be sent).
const markedValue = fc.oneof(
  fc.constantFrom('', '"', '""', `"${MARK}"`, `${MARK}%0d%0aSet-Cookie:%20x=1`, `${MARK};`, `${MARK},${OTHER}`,
    `${OTHER}.${MARK}`, `${MARK}.${'A'.repeat(43)}`, `${OTHER} `, ` ${OTHER}`, `${OTHER.toUpperCase()}`, `${MARK}\t`),
  fc.string({ unit: 'grapheme-ascii', maxLength: 30 }).map((text) => MARK + text),
  fc.string({ unit: 'grapheme', maxLength: 10 }).map((text) => MARK + text),
  fc.integer({ min: 0, max: 6_000 }).map((length) => MARK + 'v'.repeat(length))
).map((text) => Buffer.from(text, 'utf8'))
const someName = fc.oneof(fc.constantFrom(COOKIE, COOKIE.toUpperCase(), ` ${COOKIE}`, `${COOKIE} `, 'a', '', '$Version'),
  fc.string({ unit: 'grapheme-ascii', maxLength: 8 }))
const pair = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(someName, markedValue).map(([name, value]) => Buffer.concat([Buffer.from(`${name}=`), value])) },
  { weight: 1, arbitrary: markedValue },
  { weight: 2, arbitrary: fc.constant(Buffer.from(`${COOKIE}=${OTHER}`)) },
  { weight: 1, arbitrary: fc.constant(Buffer.from(`${COOKIE}=${MACHINE}`)) },
  // Any byte but the line breaks and NUL (sent separately below): Node refuses other control characters with 400.
  {
    weight: 1,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }).map((bytes) => Buffer.concat([Buffer.from(`${COOKIE}=${MARK}`),
      Buffer.from(bytes.map((byte) => (byte === 10 || byte === 13 || byte === 0 ? 0x80 : byte)))]))
  }
)
const separator = fc.constantFrom('; ', ';', ' ;', ', ', ';;', ' ', '\t;')
const cookieHeader = fc.tuple(fc.array(pair, { minLength: 1, maxLength: 8 }), separator).map(([pairs, sep]) => {
  const parts: Buffer[] = []
  for (const [i, part] of pairs.entries()) parts.push(...(i === 0 ? [part] : [Buffer.from(sep), part]))
  const header = Buffer.concat(parts)
  return header.subarray(0, 15_000)
})

test('fuzzed Cookie headers never crash navigator, never break a response, never come back in a header', async (t) => {
  const navigator = await site(t)
  const cases = fc.sample(fc.record({
    method: fc.constantFrom('GET', 'HEAD', 'POST'),
    path: fc.constantFrom('/app/page', '/app', '/other', '/up', `/app/${MARK}?q=1`),
    cookies: fc.array(cookieHeader, { minLength: 1, maxLength: 3 })
  }), { numRuns: 400, seed: 7 })
  const statuses = new Map<number, number>()
  let index = 0
  const worker = async (): Promise<void> => {
    while (index < cases.length) {
      const item = cases[index++]
      const parsed = await check(t, navigator, item.method, item.path, item.cookies, `case ${index}`)
      if (parsed !== null) statuses.set(parsed.status, (statuses.get(parsed.status) ?? 0) + 1)
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(307) ?? 0) > 0, 'both served and replayed answers were exercised')
  t.equal(navigator.child.exitCode, null, 'still running')
  t.equal((await http(navigator.address, '/up')).status, 200)
  t.same(navigator.logs.filter((line) => line.level === undefined), [], 'every log line is one JSON object: no line injected')
})

test('hand-picked Cookie headers: huge, thousands, duplicates, our cookie twice, non-ASCII, NUL, CR and LF', async (t) => {
  const navigator = await site(t)
  const ascii = (text: string): Buffer => Buffer.from(text, 'latin1')
  const cases: Array<[string, Buffer[], RegExp]> = [
    ['one cookie just under the header limit', [ascii(`${COOKIE}=${MARK}${'x'.repeat(16_000)}`)], /^(200|431)$/],
    ['one cookie over the header limit', [ascii(`${COOKIE}=${MARK}${'x'.repeat(40_000)}`)], /^431$/],
    ['3,000 cookies', [ascii(Array.from({ length: 3_000 }, (_, i) => `c${i}=${i % 10}`).join('; '))], /^(200|431)$/],
    ['3,000 cookies named like ours', [ascii(Array.from({ length: 2_000 }, (_, i) => `${COOKIE}=${MARK}${i}`).join('; '))], /^(200|431)$/],
    ['200 Cookie headers', Array.from({ length: 200 }, (_, i) => ascii(`c${i}=${MARK}`)), /^200$/],
    ['our cookie twice, the other Machine first', [ascii(`${COOKIE}=${OTHER}; ${COOKIE}=${MARK}`)], /^307$/],
    ['our cookie twice, a bad value first', [ascii(`${COOKIE}=${MARK}; ${COOKIE}=${OTHER}`)], /^200$/],
    ['our cookie in two Cookie headers', [ascii(`${COOKIE}=${MARK}`), ascii(`${COOKIE}=${OTHER}`)], /^(200|307)$/],
    ['a CR LF-injection attempt, percent-encoded', [ascii(`${COOKIE}=${MARK}%0d%0aSet-Cookie:%20admin=1`)], /^200$/],
    ['UTF-8', [Buffer.from(`${COOKIE}=${MARK}é💥`, 'utf8')], /^200$/],
    ['Latin-1 bytes', [Buffer.from([...ascii(`${COOKIE}=${MARK}`), 0xe9, 0xff, 0x80])], /^200$/],
    ['a NUL byte', [Buffer.from([...ascii(`${COOKIE}=${MARK}`), 0, ...ascii('x')])], /^400$/],
    ['a bare CR', [ascii(`${COOKIE}=${MARK}\rSet-Cookie: admin=1`)], /^400$/],
    ['a bare LF', [ascii(`${COOKIE}=${MARK}\nSet-Cookie: admin=1`)], /^(200|400)$/],
    ['a vertical tab and DEL', [ascii(`${COOKIE}=${MARK}\x0b\x7f`)], /^(200|400)$/],
    ['only separators', [ascii(';;;; ; ;')], /^200$/],
    ['a name without a value', [ascii(COOKIE)], /^200$/],
    ['an empty value', [ascii(`${COOKIE}=`)], /^200$/],
    ['a quoted Machine ID', [ascii(`${COOKIE}="${OTHER}"`)], /^200$/],
    ['the Machine ID with a forged signature', [ascii(`${COOKIE}=${OTHER}.${MARK}${'A'.repeat(40)}`)], /^200$/]
  ]
  for (const [label, cookies, status] of cases) {
    for (const path of ['/app/page', '/other']) {
      const parsed = await check(t, navigator, 'GET', path, cookies, `${label} on ${path}`)
      if (parsed === null) continue
      if (path === '/other') t.not(parsed.status, 307, `${label} on a path that is not sticky is not replayed`)
      else t.match(String(parsed.status), status, `${label}: ${parsed.status}`)
      if (parsed.status === 307) {
        t.same(parsed.headers.filter(([name]) => name === 'fly-replay').map(([, value]) => value.split(';')[0]), [`instance=${OTHER}`], `${label}: replayed to ${OTHER} only`)
      }
    }
  }
  t.equal(navigator.child.exitCode, null, 'still running')
  t.equal((await http(navigator.address, '/up')).status, 200)
  t.same(navigator.logs.filter((line) => line.level === undefined), [], 'every log line is one JSON object: no line injected')
})

/** Sends an upgrade request and resolves with the response head (a 101 keeps the connection open, so it is cut). */
async function upgradeHead (navigator: Running, cookie: Buffer): Promise<string> {
  const url = new URL(navigator.address)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    let received = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('no answer within 10 s'))
    }, 10_000)
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(received.toString('latin1'))
    }
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.includes('\r\n\r\n')) finish()
    })
    socket.on('error', () => {})
    socket.on('close', finish)
    socket.write(Buffer.concat([
      Buffer.from('GET /app/socket HTTP/1.1\r\nHost: hostile.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: ', 'latin1'),
      cookie,
      Buffer.from('\r\n\r\n', 'latin1')
    ]))
  })
}

test('WebSocket upgrades with fuzzed Cookie headers: a plain answer or a 101, never an echo, never a crash', async (t) => {
  const navigator = await site(t)
  const cookies = fc.sample(cookieHeader, { numRuns: 150, seed: 11 })
  const statuses = new Map<string, number>()
  for (const [i, cookie] of cookies.entries()) {
    const head = await upgradeHead(navigator, cookie)
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1] ?? 'none'
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
    if (status === 'none') t.fail(`upgrade ${i}: no HTTP answer: ${JSON.stringify(head.slice(0, 100))}`)
    const headers = head.split('\r\n\r\n')[0].split('\r\n').slice(1)
    const echoed = headers.filter((line) => line.includes(MARK))
    if (echoed.length > 0) t.fail(`upgrade ${i}: echoed into ${JSON.stringify(echoed)}`)
    for (const line of headers.filter((line) => /^set-cookie:/i.test(line) && line.includes(`${COOKIE}=`))) {
      if (!line.toLowerCase().startsWith(`set-cookie: ${COOKIE}=${MACHINE};`)) t.fail(`upgrade ${i}: cookie set to ${line}`)
    }
    if (status === '307' && !headers.some((line) => line.toLowerCase() === `fly-replay: instance=${OTHER};state=nav-sticky;timeout=10s;fallback=force_self`)) {
      t.fail(`upgrade ${i}: a 307 that is not our replay to ${OTHER}`)
    }
  }
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok((statuses.get('101') ?? 0) > 0, 'some upgrades went through to the tenant')
  t.equal(navigator.child.exitCode, null, 'still running')
  t.equal((await http(navigator.address, '/up')).status, 200)
})
