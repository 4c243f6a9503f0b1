import type { Identity } from './steps/index.js'

/** This Machine as Fly describes it in the environment; null for what is not set (off Fly: all of it). */
export function identityFrom (env: NodeJS.ProcessEnv): Identity {
  return {
    machineId: nonEmpty(env.FLY_MACHINE_ID),
    appName: nonEmpty(env.FLY_APP_NAME),
    region: nonEmpty(env.FLY_REGION)
  }
}

export function nonEmpty (value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value
}
