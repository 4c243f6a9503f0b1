import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, isAbsolute, join } from 'node:path'
import type { KeyPath, ProblemCollector } from './problems.js'
import type { ApplicationsConfig, ManagedProcessConfig } from './types.js'

/**
 * The things a process needs before it can be spawned: its working directory and its command. A config that names
 * one that does not exist loads, but every start of that process would fail with a bare `spawn ... ENOENT`; this
 * reports each, with its position, when the file is checked (`--check`), at start and at a reload.
 *
 * A command that uses `${...}` is resolved per tenant at spawn time and is not checked here.
 */
export function checkLaunchPaths (applications: ApplicationsConfig, problems: ProblemCollector, env: NodeJS.ProcessEnv): void {
  applications.tenants.forEach((tenant, index) => {
    const here = ['applications', 'tenants', index]
    if (!directoryProblem(tenant.workingDir, [...here, 'working_dir'], problems)) return
    const path = literal(tenant.env.PATH) ?? literal(applications.env.PATH) ?? env.PATH
    if (tenant.command !== null) {
      commandProblem(tenant.command, tenant.workingDir, path, [...here, 'command'], problems, '')
    } else {
      // The shared command (perhaps the default, written nowhere) is looked for in this tenant's folder.
      commandProblem(applications.command, tenant.workingDir, path, [...here, 'working_dir'], problems, ' (applications.command, resolved in this working directory)')
    }
  })
  applications.standaloneServers.forEach((server, index) => {
    const here = ['applications', 'standalone_servers', index]
    if (!directoryProblem(server.workingDir, [...here, 'working_dir'], problems)) return
    commandProblem(server.command, server.workingDir, server.env.PATH ?? env.PATH, [...here, 'command'], problems, '')
  })
}

/** The same check for `managed_processes`: each one's working directory, then its command. */
export function checkManagedLaunchPaths (processes: ManagedProcessConfig[], problems: ProblemCollector, env: NodeJS.ProcessEnv): void {
  processes.forEach((managed, index) => {
    const here = ['managed_processes', index]
    if (!directoryProblem(managed.workingDir, [...here, 'working_dir'], problems)) return
    commandProblem(managed.command, managed.workingDir, managed.env.PATH ?? env.PATH, [...here, 'command'], problems, '')
  })
}

function literal (value: string | undefined): string | undefined {
  return value === undefined || value.includes('${') ? undefined : value
}

/** False (and a problem recorded) when `dir` is not a directory. */
function directoryProblem (dir: string, at: KeyPath, problems: ProblemCollector): boolean {
  let isDirectory: boolean
  try {
    isDirectory = statSync(dir).isDirectory()
  } catch {
    problems.add(at, `the working directory ${dir} does not exist: create it, or set working_dir to the app's folder (relative paths start at the config file's folder)`)
    return false
  }
  if (!isDirectory) problems.add(at, `the working directory ${dir} is not a directory: set working_dir to the app's folder`)
  return isDirectory
}

function commandProblem (command: string, cwd: string, path: string | undefined, at: KeyPath, problems: ProblemCollector, from: string): void {
  if (command === '' || command.includes('${')) return
  // As the process is spawned: a name with a slash is a path (relative to the working directory), else PATH is searched.
  if (command.includes('/')) {
    const file = isAbsolute(command) ? command : join(cwd, command)
    const problem = executableProblem(file)
    if (problem !== null) problems.add(at, `the command ${file}${from} ${problem}: write the path of the app's executable, relative to working_dir or absolute`)
    return
  }
  const folders = (path ?? '').split(delimiter).filter((folder) => folder !== '')
  if (folders.some((folder) => executableProblem(join(folder, command)) === null)) return
  problems.add(at, `the command ${JSON.stringify(command)}${from} is not on PATH (${folders.join(delimiter) || 'PATH is empty'}): install it, or write its absolute path`)
}

function executableProblem (file: string): string | null {
  try {
    if (!statSync(file).isFile()) return 'is not a file'
  } catch {
    return 'does not exist'
  }
  try {
    accessSync(file, constants.X_OK)
    return null
  } catch {
    return 'is not executable (chmod +x it)'
  }
}
