// Config problems: where they are in the YAML source, how they print, and the
// error that carries all of them.

import { yamlLibrary } from './yaml-lib.js'
import type { ConfigProblem } from './types.js'
import type { PositionedYaml } from './yaml-source.js'

/** A key path inside the YAML document: map keys and sequence indexes. */
export type KeyPath = readonly (string | number)[]

/** How a problem whose path is the whole document prints its path. */
export const DOCUMENT_PATH_LABEL = '(document)'

export function formatProblem (problem: ConfigProblem): string {
  const path = problem.path === '' ? DOCUMENT_PATH_LABEL : problem.path
  return `${problem.file}:${problem.line}:${problem.column}: ${path}: ${problem.message}`
}

export function sortProblems (problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) => a.problem.line - b.problem.line || a.problem.column - b.problem.column || a.index - b.index)
    .map(({ problem }) => problem)
}

/** Thrown by `loadConfig` and `parseConfig`: every problem of the file at once, sorted by position. */
export class ConfigError extends Error {
  readonly code = 'NAV_CONFIG_INVALID'
  readonly problems: ConfigProblem[]

  constructor (problems: ConfigProblem[]) {
    const sorted = sortProblems(problems)
    super(sorted.map(formatProblem).join('\n'))
    this.name = 'ConfigError'
    this.problems = sorted
  }
}

/** Collects problems with positions from the parsed YAML document. */
export class ProblemCollector {
  readonly problems: ConfigProblem[] = []
  private readonly paths = new Set<string>()
  private origins: ReadonlyArray<{ canonical: KeyPath, original: KeyPath }> = []

  /**
   * `source` parses the YAML with positions; it is called at the first problem only, so a
   * valid file is never parsed twice (see yaml-source.ts).
   */
  constructor (
    private readonly file: string,
    private readonly source: () => PositionedYaml
  ) {}

  /**
   * Records a problem at `path`. `at: 'key'` points at the key itself (unknown keys, bad map keys);
   * otherwise at the value, or at the nearest enclosing mapping/sequence that exists in the source
   * (a missing required key points at its parent mapping).
   * A second problem on a path that already has one is dropped: the first is the precise one.
   */
  add (canonicalPath: KeyPath, message: string, at: 'value' | 'key' = 'value'): void {
    const path = this.originalPath(canonicalPath)
    const dotted = path.join('.')
    const id = at === 'key' ? `${dotted}#key` : dotted
    if (this.paths.has(id)) return
    this.paths.add(id)
    const { line, col } = this.source().lineCounter.linePos(this.offsetOf(path, at))
    this.problems.push({ file: this.file, line, column: col, path: dotted, message })
  }

  /**
   * Where values of the translated config came from (go-forms.ts): a problem at a translated key path is reported
   * at the key the file has.
   */
  setOrigins (origins: ReadonlyArray<{ canonical: KeyPath, original: KeyPath }>): void {
    this.origins = origins
  }

  private originalPath (path: KeyPath): KeyPath {
    let best: { canonical: KeyPath, original: KeyPath } | null = null
    for (const origin of this.origins) {
      if (origin.canonical.length > path.length || (best !== null && origin.canonical.length <= best.canonical.length)) continue
      if (origin.canonical.every((segment, index) => String(segment) === String(path[index]))) best = origin
    }
    return best === null ? path : [...best.original, ...path.slice(best.canonical.length)]
  }

  /** Records a problem at a known source offset (YAML syntax errors). */
  addAtOffset (offset: number, message: string): void {
    const { line, col } = this.source().lineCounter.linePos(offset)
    this.problems.push({ file: this.file, line, column: col, path: '', message })
  }

  get size (): number {
    return this.problems.length
  }

  private offsetOf (path: KeyPath, at: 'value' | 'key'): number {
    const { isMap, isSeq } = yamlLibrary()
    let node: unknown = this.source().document.contents ?? null
    let offset = rangeStart(node) ?? 0
    for (let i = 0; i < path.length; i++) {
      const segment = path[i]
      const last = i === path.length - 1
      if (isMap(node)) {
        const pair = node.items.find((item) => keyText(item.key) === String(segment))
        if (pair === undefined) return offset
        const keyOffset = rangeStart(pair.key)
        if (last && at === 'key' && keyOffset !== undefined) return keyOffset
        node = pair.value
        offset = rangeStart(node) ?? keyOffset ?? offset
      } else if (isSeq(node)) {
        const item = node.items[Number(segment)]
        if (item === undefined) return offset
        node = item
        offset = rangeStart(node) ?? offset
      } else {
        return offset
      }
    }
    return offset
  }
}

function keyText (key: unknown): string {
  if (yamlLibrary().isScalar(key)) return String(key.value)
  return String(key)
}

function rangeStart (node: unknown): number | undefined {
  if (node === null || typeof node !== 'object') return undefined
  const range = (node as { range?: [number, number, number] | null }).range
  return range ? range[0] : undefined
}
