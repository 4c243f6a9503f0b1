// Fly's region aliases in a `region=` list. A real Fly app's regions belong to these
// groups; a local Machine can use any lower-case code, and `any` matches every region.

const NORTH_AMERICA_US = ['atl', 'bos', 'den', 'dfw', 'ewr', 'iad', 'lax', 'mia', 'ord', 'phx', 'sea', 'sjc']

export const REGION_ALIASES: Readonly<Record<string, readonly string[]>> = {
  us: NORTH_AMERICA_US,
  usa: NORTH_AMERICA_US,
  na: [...NORTH_AMERICA_US, 'gdl', 'qro', 'yul', 'yyz'],
  sa: ['bog', 'eze', 'gig', 'gru', 'scl'],
  eu: ['ams', 'arn', 'cdg', 'fra', 'lhr', 'mad', 'otp', 'waw'],
  apac: ['bom', 'hkg', 'nrt', 'sin', 'syd']
}

/** Whether `region` satisfies one entry of a `region=` list (a code, an alias, or `any`). */
export function regionMatches (entry: string, region: string): boolean {
  if (entry === 'any' || entry === region) return true
  const alias = REGION_ALIASES[entry]
  return alias !== undefined && alias.includes(region)
}
