// "Did you mean ...?" for unknown keys.

/** Levenshtein edit distance (insertions, deletions, substitutions). */
export function editDistance (a: string, b: string): number {
  if (a === b) return 0
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, substitution)
    }
    previous = current
  }
  return previous[b.length]
}

/**
 * The candidate closest to `word`, or null when even the closest one differs in more than
 * half of the word (at least 2 edits are always allowed): suggesting `idle` for `foo` helps nobody.
 */
export function closest (word: string, candidates: readonly string[]): string | null {
  let best: string | null = null
  let bestDistance = Infinity
  const lowered = word.toLowerCase()
  for (const candidate of candidates) {
    const distance = editDistance(lowered, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  const allowed = Math.max(2, Math.floor(word.length / 2))
  return bestDistance <= allowed ? best : null
}
