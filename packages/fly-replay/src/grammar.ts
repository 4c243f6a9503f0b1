// The grammar of every part of a fly-replay value we build. Values outside it are refused, so nothing that came
// from a request can smuggle a `;`, a quote or a line break into a response header.
export { MACHINE_ID_PATTERN } from '@navigator/config'

export const REGION_PATTERN = /^[a-z0-9]{2,8}$/
export const APP_PATTERN = /^[a-z0-9-]{1,63}$/
export const STATE_PATTERN = /^[A-Za-z0-9._~-]{1,256}$/
export const FALLBACKS = ['force_self', 'prefer_self'] as const
export type ReplayFallback = typeof FALLBACKS[number]
