// Where the values of a block-style YAML text stand, line by line, so that the launcher can change a few of them in
// a Machine's copy of a config and leave every other byte (comments, quoting, order) as the user wrote it. The
// package has no YAML library of its own; the launcher checks its result with @navigator/config's loader, so a
// layout this reader does not follow (a flow mapping holding a key to change) is reported, never guessed at.

export type YamlSegment = string | number

/** A key (or a scalar sequence item) and the columns of its value on its line. */
export interface YamlValue {
  /** Keys and sequence indexes from the document's root, e.g. ['applications', 'standalone_servers', 0, 'port']. */
  path: YamlSegment[]
  /** Index of the line. */
  line: number
  /** Column of the key (or of the item's value). */
  column: number
  /** Columns of the value text, comment and surrounding blanks excluded; equal when the value is on the lines below. */
  start: number
  end: number
  /** The value text as written (quotes included). */
  text: string
}

interface Frame {
  column: number
  segment: YamlSegment
  item: boolean
  items: number
}

const KEY = /^("[^"]*"|'[^']*'|[^\s#'"[\]{}|>!&*%@`-][^#]*?|-[^\s#][^#]*?)[ \t]*:(?=[ \t]|$)/
const BLOCK_SCALAR = /^[|>][0-9+-]*$/

/** The end column of the value starting at `start`: before a ` #` comment outside quotes, trailing blanks excluded. */
function valueEnd (line: string, start: number): number {
  let quote: string | null = null
  let end = line.length
  for (let i = start; i < line.length; i++) {
    const c = line[i]
    if (quote === '"' && c === '\\') i++
    else if (quote !== null) quote = c === quote ? null : quote
    else if (c === '"' || c === "'") quote = c
    else if (c === '#' && (i === start || line[i - 1] === ' ' || line[i - 1] === '\t')) {
      end = i
      break
    }
  }
  while (end > start && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--
  return end
}

function unquote (key: string): string {
  return /^(["']).*\1$/.test(key) ? key.slice(1, -1) : key
}

/** A flow collection left open on its line continues on the deeper lines below. */
function opensFlow (text: string): boolean {
  if (!/^[[{]/.test(text)) return false
  let depth = 0
  for (const c of text.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, '')) {
    if (c === '[' || c === '{') depth++
    else if (c === ']' || c === '}') depth--
  }
  return depth > 0
}

/**
 * Every `key: value` line and every scalar sequence item of a block-style YAML text, with its path. Block scalars
 * (`|`, `>`) and flow collections spanning lines are passed over; their content is not listed.
 */
export function yamlValues (text: string): YamlValue[] {
  const values: YamlValue[] = []
  const stack: Frame[] = []
  let rootItems = 0
  let skipDeeperThan = -1
  text.split('\n').forEach((line, index) => {
    const content = line.trimStart()
    let column = line.length - content.length
    if (content.trim() === '' || content.startsWith('#')) return
    if (skipDeeperThan >= 0 && column > skipDeeperThan) return
    skipDeeperThan = -1
    let rest = content
    let inItem = false
    while (rest === '-' || rest.startsWith('- ') || rest.startsWith('-\t')) {
      while (stack.length > 0 && (stack[stack.length - 1].column > column || (stack[stack.length - 1].column === column && stack[stack.length - 1].item))) stack.pop()
      const parent = stack[stack.length - 1]
      stack.push({ column, segment: parent === undefined ? rootItems++ : parent.items++, item: true, items: 0 })
      const after = rest.slice(1)
      rest = after.trimStart()
      column += 1 + after.length - rest.length
      inItem = true
    }
    if (rest.trim() === '') return
    const key = KEY.exec(rest)
    if (key === null) {
      if (!inItem) return
      const end = valueEnd(line, column)
      const value = line.slice(column, end)
      values.push({ path: stack.map((frame) => frame.segment), line: index, column, start: column, end, text: value })
      if (BLOCK_SCALAR.test(value) || opensFlow(value)) skipDeeperThan = stack[stack.length - 1].column
      return
    }
    while (stack.length > 0 && stack[stack.length - 1].column >= column) stack.pop()
    const name = unquote(key[1])
    const afterKey = column + key[0].length
    const start = afterKey + (line.slice(afterKey).length - line.slice(afterKey).trimStart().length)
    const end = valueEnd(line, start)
    const value = line.slice(start, end)
    values.push({ path: [...stack.map((frame) => frame.segment), name], line: index, column, start, end, text: value })
    stack.push({ column, segment: name, item: false, items: 0 })
    if (BLOCK_SCALAR.test(value) || opensFlow(value)) skipDeeperThan = column
  })
  return values
}

/** Whether `path` is `prefix` followed by anything (or nothing). */
export function startsWith (path: YamlSegment[], prefix: YamlSegment[]): boolean {
  return prefix.every((segment, i) => path[i] === segment)
}
