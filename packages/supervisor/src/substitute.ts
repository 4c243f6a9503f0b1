const REFERENCE = /\$\{([^}]+)\}/g

export class UnresolvedReferenceError extends Error {
  constructor (readonly reference: string) {
    super(`\${${reference}} is not defined`)
  }
}

/** Replaces every `${name}` in `text` with `lookup(name)`; throws UnresolvedReferenceError for a name without a value. */
export function substitute (text: string, lookup: (name: string) => string | undefined): string {
  if (!text.includes('${')) return text
  return text.replace(REFERENCE, (_match, name: string) => {
    const value = lookup(name)
    if (value === undefined) throw new UnresolvedReferenceError(name)
    return value
  })
}
