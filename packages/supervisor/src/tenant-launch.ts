import { DEFAULT_PORT_ENV_VAR, type ApplicationsConfig, type TenantConfig } from '@navigator/config'
import { substitute } from './substitute.js'

export interface Launch {
  command: string
  args: string[]
  cwd: string
  env: NodeJS.ProcessEnv
}

/**
 * What to spawn for a tenant on `port`: command, arguments, working directory and environment.
 * The environment is layered: Navigator's own, then `applications.env`, then the tenant's `env`, then `PORT` (and
 * the variable `applications.portEnvVar` names, when it is another one).
 * `${name}` in the command, the arguments and the env values resolves from the tenant's `var`, then `PORT`,
 * then Navigator's environment.
 * Throws UnresolvedReferenceError for a name found nowhere.
 */
export function tenantLaunch (
  applications: ApplicationsConfig,
  tenant: TenantConfig,
  port: number,
  environment: NodeJS.ProcessEnv
): Launch {
  const portText = String(port)
  const lookup = (name: string): string | undefined => {
    if (Object.hasOwn(tenant.var, name)) return tenant.var[name]
    if (name === 'PORT') return portText
    return environment[name]
  }
  const env: NodeJS.ProcessEnv = { ...environment }
  for (const [key, value] of Object.entries(applications.env)) env[key] = substitute(value, lookup)
  for (const [key, value] of Object.entries(tenant.env)) env[key] = substitute(value, lookup)
  env.PORT = portText
  env[applications.portEnvVar ?? DEFAULT_PORT_ENV_VAR] = portText
  return {
    command: substitute(tenant.command ?? applications.command, lookup),
    args: (tenant.args ?? applications.args).map((arg) => substitute(arg, lookup)),
    cwd: tenant.workingDir,
    env
  }
}

/** Everything that changes how a tenant is launched; two equal signatures mean a reload can keep the process. */
export function tenantSignature (applications: ApplicationsConfig, tenant: TenantConfig): string {
  return JSON.stringify([
    tenant.command ?? applications.command,
    tenant.args ?? applications.args,
    applications.env,
    tenant.env,
    tenant.var,
    tenant.workingDir,
    tenant.healthCheck ?? applications.healthCheck,
    applications.portEnvVar ?? DEFAULT_PORT_ENV_VAR,
    tenant.user ?? applications.user ?? null,
    tenant.group ?? applications.group ?? null,
    tenant.memoryLimit ?? applications.memoryLimit ?? null
  ])
}
