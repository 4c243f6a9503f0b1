import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { FastifyBaseLogger } from 'fastify'
import type Bcrypt from 'bcryptjs'

/**
 * The htpasswd file is looked at (one stat) at most this often, by the request that comes after: a changed file is
 * reread then. A stat rather than fs.watch: a watch follows an inode, and editors, `htpasswd` itself and secret
 * mounts replace the file (a rename, a symbolic link swapped) rather than write into it; a stat by path sees both,
 * needs no timer, and on the local disk costs a few microseconds once a second.
 */
export const HTPASSWD_RECHECK_MS = 1000
/** At most this many verified credentials are remembered; beyond it the oldest is forgotten. */
export const VERIFIED_CACHE_MAX_ENTRIES = 1000

// The hash libraries are loaded when a password is first checked, so a Navigator without `auth` never pays for them
// (this module is loaded by every one). apache-md5 is CommonJS whose typings declare an ES default export: required,
// it is the function they describe.
// (Written as createRequire(import.meta.url)('name') each time: the release's bundler follows that form.)
let bcryptModule: typeof Bcrypt | null = null
let aprMd5Module: ((password: string, salt?: string) => string) | null = null
function bcrypt (): typeof Bcrypt {
  bcryptModule ??= createRequire(import.meta.url)('bcryptjs') as typeof Bcrypt
  return bcryptModule
}
function aprMd5 (password: string, salt: string): string {
  aprMd5Module ??= createRequire(import.meta.url)('apache-md5') as (password: string, salt?: string) => string
  return aprMd5Module(password, salt)
}

// SHA-256 and SHA-512 crypt (`$5$`, `$6$`, what `mkpasswd` and glibc write): unixcrypt, an ES module only, so
// imported (on first use) rather than required.
let shaCryptModule: Promise<typeof import('unixcrypt')> | null = null
async function shaCrypt (): Promise<typeof import('unixcrypt')> {
  shaCryptModule ??= import('unixcrypt')
  return await shaCryptModule
}

/** SHA-crypt verifications waiting for their turn at most; one more is refused as a wrong password. */
export const SHA_CRYPT_MAX_WAITING = 64
let shaCryptQueue: Promise<void> = Promise.resolve()
let shaCryptWaiting = 0

/**
 * unixcrypt verifies synchronously: about 12 ms of this process's one thread for the default 5,000 rounds. So the
 * verifications take turns, and after each the thread is left to everything else for as long as it took: a stream
 * of wrong passwords for a `$5$`/`$6$` user holds at most half of the event loop, and a verified password is
 * remembered (see HtpasswdFile) so a returning client costs none. Beyond SHA_CRYPT_MAX_WAITING waiting, a
 * verification is not made and counts as a wrong password.
 */
async function verifyShaCrypt (password: string, hash: string): Promise<boolean> {
  if (shaCryptWaiting >= SHA_CRYPT_MAX_WAITING) return false
  shaCryptWaiting++
  const turn = shaCryptQueue.then(async () => {
    const module = await shaCrypt()
    const started = performance.now()
    let verified = false
    try {
      verified = module.verify(password, hash)
    } catch {}
    return { verified, took: performance.now() - started }
  })
  // The next one's turn comes once this one is done and as long again has passed.
  shaCryptQueue = turn.then(async ({ took }) => { await new Promise((resolve) => { setTimeout(resolve, took) }) }, () => {})
  try {
    return (await turn).verified
  } catch {
    return false
  } finally {
    shaCryptWaiting--
  }
}

export type HashKind = 'bcrypt' | 'apr1' | 'md5-crypt' | 'sha-crypt' | 'sha' | 'ssha' | 'plain'

export interface HtpasswdEntry { kind: HashKind, hash: string }

export interface Htpasswd {
  users: Map<string, HtpasswdEntry>
  /** Lines whose hash is of a kind not supported (`$5$`, `$6$`, DES crypt...): those users are refused. */
  unsupported: Array<{ line: number, user: string }>
}

/**
 * The kind of a hash, by its prefix; null for a prefixed hash of another kind. An entry without a `$` or `{`
 * prefix is plain text, as the Go Navigator reads it: a prefixed hash it does not know is never taken for a
 * password, which would let anyone who reads the file log in with the hash.
 */
export function hashKind (hash: string): HashKind | null {
  if (/^\$2[aby]\$\d\d\$/.test(hash)) return 'bcrypt'
  if (hash.startsWith('$apr1$')) return 'apr1'
  if (hash.startsWith('$1$')) return 'md5-crypt'
  if (/^\$[56]\$/.test(hash)) return 'sha-crypt'
  if (hash.startsWith('{SHA}')) return 'sha'
  if (hash.startsWith('{SSHA}')) return 'ssha'
  if (hash.startsWith('$') || hash.startsWith('{')) return null
  return 'plain'
}

/** Reads htpasswd text: `user:hash` lines; blank lines and `#` comments are skipped; a later line for a user wins. */
export function parseHtpasswd (text: string): Htpasswd {
  const users = new Map<string, HtpasswdEntry>()
  const unsupported: Htpasswd['unsupported'] = []
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const colon = line.indexOf(':')
    if (colon <= 0) return
    const user = line.slice(0, colon)
    const hash = line.slice(colon + 1)
    const kind = hashKind(hash)
    if (kind === null) {
      unsupported.push({ line: index + 1, user })
      users.delete(user)
    } else {
      users.set(user, { kind, hash })
    }
  })
  return { users, unsupported }
}

/** Equal-length digests compared in constant time: neither the length nor the first difference shows in the timing. */
function sameSecret (a: string | Buffer, b: string | Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

function sshaMatches (hash: string, password: string): boolean {
  const decoded = Buffer.from(hash.slice('{SSHA}'.length), 'base64')
  if (decoded.length <= 20) return false
  const salt = decoded.subarray(20)
  return sameSecret(createHash('sha1').update(password).update(salt).digest(), decoded.subarray(0, 20))
}

/** Whether `password` is the one of `entry`; bcrypt is verified off the event loop's critical path (bcryptjs async). */
export function verifyPassword (entry: HtpasswdEntry, password: string): boolean | Promise<boolean> {
  switch (entry.kind) {
    case 'bcrypt':
      return bcrypt().compare(password, entry.hash).catch(() => false)
    case 'apr1':
    case 'md5-crypt':
      return sameSecret(aprMd5(password, entry.hash), entry.hash)
    case 'sha-crypt':
      return verifyShaCrypt(password, entry.hash)
    case 'sha':
      return sameSecret('{SHA}' + createHash('sha1').update(password).digest('base64'), entry.hash)
    case 'ssha':
      return sshaMatches(entry.hash, password)
    case 'plain':
      return sameSecret(password, entry.hash)
  }
}

/**
 * An htpasswd file as the auth step reads it: reread when it changes (see HTPASSWD_RECHECK_MS), with the credentials
 * it verified remembered, keyed by a SHA-256 of the `Authorization` token (never the password itself), until the
 * file changes: with bcrypt on, a returning client costs a hash and a map lookup instead of a bcrypt round.
 */
export class HtpasswdFile {
  private users = new Map<string, HtpasswdEntry>()
  private readonly verified = new Set<string>()
  private signature = ''
  private checkedAt = -Infinity
  private generation = 0
  /**
   * A bcrypt hash of nothing anyone knows, at the cost the file's users have: a name that is not in the file is
   * checked against it, so an unknown user takes as long as a known one with a wrong password and the answer's
   * timing does not tell which names exist. Null while it is made, or when the file has no bcrypt entry.
   */
  private decoy: string | null = null
  /** Settles once the decoy of the file as last read is made (tests wait for it). */
  decoyMade: Promise<void> = Promise.resolve()

  constructor (readonly path: string, private readonly log: FastifyBaseLogger, private readonly recheckMs = HTPASSWD_RECHECK_MS) {
    this.refresh()
  }

  /** Whether an `Authorization` header names a user of the file with their password. */
  check (authorization: string | undefined): boolean | Promise<boolean> {
    const now = Date.now()
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now
      this.refresh()
    }
    if (authorization === undefined || !/^basic /i.test(authorization)) return false
    const token = authorization.slice(6).trim()
    // The one-shot hash: a third of createHash's cost, on every request of a client that is logged in.
    const key = hash('sha256', token, 'base64')
    if (this.verified.has(key)) return true
    const credentials = Buffer.from(token, 'base64').toString('utf8')
    const colon = credentials.indexOf(':')
    const entry = colon === -1 ? undefined : this.users.get(credentials.slice(0, colon))
    if (entry === undefined) return this.decoy === null ? false : bcrypt().compare(credentials.slice(colon + 1), this.decoy).then(() => false, () => false)
    const result = verifyPassword(entry, credentials.slice(colon + 1))
    const generation = this.generation
    if (typeof result === 'boolean') return this.remember(key, result, generation)
    return result.then((ok) => this.remember(key, ok, generation))
  }

  private remember (key: string, ok: boolean, generation: number): boolean {
    // A verification that began before the file changed answers its request, but is not kept for later ones.
    if (!ok || generation !== this.generation) return ok
    if (this.verified.size >= VERIFIED_CACHE_MAX_ENTRIES) this.verified.delete(this.verified.values().next().value as string)
    this.verified.add(key)
    return true
  }

  private refresh (): void {
    let signature = 'missing'
    try {
      const stats = statSync(this.path, { throwIfNoEntry: false })
      if (stats !== undefined) signature = `${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`
    } catch {
      // ENOTDIR, EACCES on a folder of the path: as good as missing.
    }
    if (signature === this.signature) return
    this.signature = signature
    this.generation++
    this.verified.clear()
    this.users = this.read()
    this.makeDecoy()
  }

  private makeDecoy (): void {
    this.decoy = null
    let cost: number | null = null
    for (const entry of this.users.values()) {
      if (entry.kind === 'bcrypt') cost = Math.max(cost ?? 0, Number(entry.hash.slice(4, 6)))
    }
    if (cost === null) return
    const generation = this.generation
    this.decoyMade = bcrypt().hash(randomBytes(16).toString('base64'), cost).then((decoy) => {
      if (generation === this.generation) this.decoy = decoy
    }, () => {})
  }

  private read (): Map<string, HtpasswdEntry> {
    let text: string
    try {
      text = readFileSync(this.path, 'utf8')
    } catch (err) {
      // Fail closed: a file that cannot be read lets nobody in, until it can be read again.
      this.log.error({ file: this.path, err }, 'cannot read the htpasswd file: every password is refused')
      return new Map()
    }
    const { users, unsupported } = parseHtpasswd(text)
    for (const { line, user } of unsupported) {
      this.log.warn({ file: this.path, line, user }, 'htpasswd: hash of an unsupported kind (use bcrypt, $apr1$, $1$, $5$, $6$, {SHA} or {SSHA}): this user is refused')
    }
    this.log.info({ file: this.path, users: users.size }, 'htpasswd file read')
    return users
  }
}
