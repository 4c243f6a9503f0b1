// Fly Machine IDs, as this product accepts them (cookies, peers, replay targets).

/** A Machine ID: 1 to 64 characters of a-z, 0-9 and "-". */
export const MACHINE_ID_PATTERN = /^[a-z0-9-]{1,64}$/

export function isValidMachineId (id: unknown): id is string {
  return typeof id === 'string' && MACHINE_ID_PATTERN.test(id)
}
