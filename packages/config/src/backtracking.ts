import { createRequire } from 'node:module'
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'
import type { KeyPath, ProblemCollector } from './problems.js'

/**
 * Regular expressions of the config that could hold the server on one long request path. recheck (a maintained
 * ReDoS checker) finds exponential backtracking, nested repetition and alternatives that overlap inside a repetition
 * alike, and polynomial backtracking with its degree. Its pure JavaScript build costs about 60 ms to load and 30 MiB
 * that a running process never gives back, so it runs in a worker thread that ends with the check: the load waits
 * for it (a config is loaded at --check, at start and on reload, never per request). A pattern it cannot decide
 * within RECHECK_TIMEOUT_MS, or that breaks the checker, gets safe-regex2's nesting check (the one find-my-way,
 * Fastify's router, makes) instead. Costs are in packages/config/README.md.
 */

export const RECHECK_TIMEOUT_MS = 1000
/** Polynomial matching time of this degree or more is refused: a path of a few thousand characters takes seconds. */
export const REFUSED_POLYNOMIAL_DEGREE = 3

const REWRITE_ADVICE = 'write each character once: one character class instead of alternatives that overlap ' +
  '(`\\w+`, not `(\\w|\\d)+`; `a*`, not `(a|a)*`) and one quantifier instead of nested ones (`a+`, not `(a+)+`)'

const POLYNOMIAL_ADVICE = 'let fewer unbounded repetitions match the same text one after another: `[^/]*` instead ' +
  'of `.*` between path separators, or one `.*` where several follow each other'

export interface PatternAt { pattern: RegExp, path: KeyPath }

/** What recheck said of one pattern: the complexity it found when vulnerable, or that it could not decide. */
type Verdict = { status: 'safe' } | { status: 'unknown' } | { status: 'vulnerable', type: string, degree: number, summary: string }

// CommonJS run by the worker: checks every pattern, posts the verdicts, then wakes the waiting thread.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads')
const { port, sources, recheck, timeout, signal } = workerData
const verdicts = []
try {
  let loaded
  if (recheck.source !== undefined) {
    const module = { exports: {} }
    new Function('module', 'exports', 'require', recheck.source)(module, module.exports, require)
    loaded = module.exports
  } else {
    loaded = require(recheck.file)
  }
  const { checkSync } = loaded
  for (const [source, flags] of sources) {
    const result = checkSync(source, flags, { timeout })
    const complexity = result.complexity
    verdicts.push(result.status === 'vulnerable' && complexity !== undefined
      ? { status: 'vulnerable', type: complexity.type, degree: complexity.degree ?? 0, summary: complexity.summary }
      : { status: result.status === 'safe' ? 'safe' : 'unknown' })
  }
} catch {
  // A pattern that broke the checker (or a checker that would not load) gets no verdict: safe-regex2 decides.
} finally {
  port.postMessage(verdicts)
  Atomics.store(signal, 0, 1)
  Atomics.notify(signal, 0)
}
`

/**
 * Where the worker loads recheck from: its file in node_modules. The one-file bundle of the CLI (scripts/release.mjs)
 * has no node_modules, so it replaces this function's body with recheck's source.
 */
function recheckModule (): { file: string } | { source: string } {
  return { file: createRequire(import.meta.url).resolve('recheck/lib/browser.js') }
}

interface RecheckRun { worker: Worker, answers: MessagePort, signal: Int32Array }

/** For this package's tests only (not exported by the package): the worker's source, and how many were started. */
export const recheckWorkers = { source: WORKER_SOURCE, started: 0 }

/** Starts a worker that checks the patterns with recheck; null when recheck cannot be found. */
function startRecheck (patterns: readonly PatternAt[]): RecheckRun | null {
  let recheck: ReturnType<typeof recheckModule>
  try {
    recheck = recheckModule()
  } catch {
    return null
  }
  const signal = new Int32Array(new SharedArrayBuffer(4))
  const { port1, port2 } = new MessageChannel()
  recheckWorkers.started++
  const worker = new Worker(recheckWorkers.source, {
    eval: true,
    execArgv: [],
    workerData: {
      port: port2,
      signal,
      sources: patterns.map(({ pattern }) => [pattern.source, pattern.flags]),
      recheck,
      timeout: RECHECK_TIMEOUT_MS
    },
    transferList: [port2]
  })
  // An error in the worker (out of memory, say) would otherwise be thrown in this thread; its patterns are unknown.
  worker.on('error', () => {})
  return { worker, answers: port1, signal }
}

/** Each pattern is bounded by recheck's own timeout; the margin covers starting the worker and loading recheck. */
const deadlineMs = (count: number): number => RECHECK_TIMEOUT_MS * count + 10_000

function endRecheck (run: RecheckRun): Verdict[] {
  const answer = receiveMessageOnPort(run.answers)?.message as Verdict[] | undefined
  run.answers.close()
  void run.worker.terminate()
  return answer ?? []
}

/** recheck's verdict on each pattern, in order, waited for in this thread; a pattern missing is unknown. */
function recheckAll (patterns: readonly PatternAt[]): Verdict[] {
  const run = startRecheck(patterns)
  if (run === null) return []
  Atomics.wait(run.signal, 0, 0, deadlineMs(patterns.length))
  return endRecheck(run)
}

/** `recheckAll` without holding this thread: it goes on (serving requests) until the worker answers or ends. */
async function recheckAllAsync (patterns: readonly PatternAt[]): Promise<Verdict[]> {
  const run = startRecheck(patterns)
  if (run === null) return []
  // The worker posts its verdicts, then wakes the waiting side; `waitAsync` needs no event from the port. A pending
  // `waitAsync` does not keep the process alive: a worker that ends without answering (out of memory, failed to
  // start) ends the wait too, or a --check or a start would exit with nothing said.
  const ended = new Promise<void>((resolve) => { run.worker.once('exit', () => { resolve() }) })
  const { async, value } = Atomics.waitAsync(run.signal, 0, 0, deadlineMs(patterns.length))
  if (async) await Promise.race([value, ended])
  return endRecheck(run)
}

let safeRegex: ((re: RegExp) => boolean) | null = null

function problemOf (pattern: RegExp, verdict: Verdict | undefined): string | null {
  if (verdict?.status === 'safe') return null
  if (verdict?.status === 'vulnerable') {
    if (verdict.type !== 'exponential' && verdict.degree < REFUSED_POLYNOMIAL_DEGREE) return null
    const advice = verdict.type === 'exponential' ? REWRITE_ADVICE : POLYNOMIAL_ADVICE
    return `this pattern can backtrack catastrophically (${verdict.summary} time in the path's length): one long ` +
      `request path could hold the server for seconds; ${advice}`
  }
  safeRegex ??= createRequire(import.meta.url)('safe-regex2') as (re: RegExp) => boolean
  if (safeRegex(pattern)) return null
  return 'this pattern can backtrack catastrophically (a quantifier inside a repeated group): one long request path ' +
    `could hold the server for seconds; ${REWRITE_ADVICE}`
}

/** recheck's verdicts by pattern (`flags/source`), kept for the process: a reload with the same patterns checks none. */
const decided = new Map<string, Verdict>()
const keyOf = (pattern: RegExp): string => `${pattern.flags}/${pattern.source}`
/** The checks in progress (`decideBacktracking`), by pattern: settled once the pattern's verdict is kept. */
const deciding = new Map<string, Promise<void>>()

/** The patterns (each once) that have no kept verdict yet. */
function undecided (patterns: readonly PatternAt[]): PatternAt[] {
  return [...new Map(patterns.map((at) => [keyOf(at.pattern), at])).entries()]
    .filter(([key]) => !decided.has(key)).map(([, at]) => at)
}

/** Keeps a verdict for each pattern; an undecided one is kept as unknown too, so that no load waits for it again. */
function keep (patterns: readonly PatternAt[], verdicts: readonly Verdict[]): void {
  patterns.forEach((at, index) => { decided.set(keyOf(at.pattern), verdicts[index] ?? { status: 'unknown' }) })
}

/**
 * Decides the patterns that have no verdict yet without holding this thread (what `loadConfig` runs first, so that
 * a reload of the running server keeps serving while the worker checks new patterns).
 */
export async function decideBacktracking (patterns: readonly PatternAt[]): Promise<void> {
  // Patterns another load is deciding now are waited for, not checked twice (a reload beside a hook's reload).
  const unknown = undecided(patterns)
  const mine = unknown.filter((at) => !deciding.has(keyOf(at.pattern)))
  const theirs = unknown.filter((at) => deciding.has(keyOf(at.pattern))).map((at) => deciding.get(keyOf(at.pattern)))
  if (mine.length > 0) {
    const decision = recheckAllAsync(mine).then((verdicts) => { keep(mine, verdicts) })
    for (const at of mine) deciding.set(keyOf(at.pattern), decision)
    try {
      await decision
    } finally {
      for (const at of mine) deciding.delete(keyOf(at.pattern))
    }
  }
  await Promise.all(theirs)
}

/**
 * Adds a problem, at the pattern's position, for each pattern that can backtrack catastrophically. Patterns without
 * a verdict (`parseConfig`, which is synchronous) are checked here, holding this thread until the worker answers.
 */
export function checkBacktracking (patterns: readonly PatternAt[], problems: ProblemCollector): void {
  const unknown = undecided(patterns)
  if (unknown.length > 0) keep(unknown, recheckAll(unknown))
  for (const { pattern, path } of patterns) {
    const problem = problemOf(pattern, decided.get(keyOf(pattern)))
    if (problem !== null) problems.add(path, problem)
  }
}
