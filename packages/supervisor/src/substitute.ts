import { substitute as substituteReferences } from '@navigator/config'

export class UnresolvedReferenceError extends Error {
  constructor (readonly reference: string) {
    super(`\${${reference}} is not defined`)
  }
}

/**
 * Replaces every `${name}` in `text` with `lookup(name)`, and `${name:-default}` with the default when the name is
 * unset or empty: the grammar of the config file's own references (@navigator/config). Throws
 * UnresolvedReferenceError for the first name without a value.
 */
export function substitute (text: string, lookup: (name: string) => string | undefined): string {
  const result = substituteReferences(text, lookup)
  if (result.missing.length > 0) throw new UnresolvedReferenceError(result.missing[0])
  return result.value
}
