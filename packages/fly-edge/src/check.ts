// `fly-edge --check`: the config as every Machine behind the edge reads it. `navigator --check` alone cannot tell,
// because the edge's variables (NAVIGATOR_PORT, NAVIGATOR_DATA, FLY_MACHINE_ID...) are set only when it launches
// the Machines.

import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { formatProblem } from '@navigator/config'
import { dataFolders, FIRST_BLOCK_PORT, machineEnv, machineLayout, randomMachineId } from './launch.js'
import { invalidCopyMessage, loadMachineConfig, machineConfigText, ownConfigText, planPorts, unmovedMessage, unmovedPorts } from './machine-config.js'
import { DEFAULT_REGION } from './machines.js'

export interface EdgeCheckOptions {
  /** The Navigator config every Machine would run. */
  config: string
  /** How many Machines to check it for; default 3, as `fly-edge` launches. */
  machines?: number
  app?: string
  regions?: string[]
  /** Added to every Machine's environment, as `launchMachines`'s `env`. */
  env?: NodeJS.ProcessEnv
}

export interface EdgeCheck {
  /** Problems as Navigator prints them (`file:line:column: key: message`), each once; empty when the file is valid. */
  problems: string[]
  /** Warnings as Navigator prints them, each once. */
  warnings: string[]
}

const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '')

/**
 * Checks `config` as each of `machines` Machines would run it: with the Machine's environment, its own ports and
 * data folder (an empty temporary one, removed after), first the file as written (its problems at their lines, the
 * working directories and commands checked as `navigator --check` does), then the Machine's copy with its ports moved.
 */
export async function checkEdgeConfig (options: EdgeCheckOptions): Promise<EdgeCheck> {
  const file = options.config
  let base: string
  try {
    base = await readFile(resolve(file), 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    return { problems: [`${file}:1:1: cannot read the config file (${reason})`], warnings: [] }
  }
  const app = options.app ?? 'fly-edge-check'
  const count = options.machines ?? 3
  const regions = options.regions !== undefined && options.regions.length > 0 ? options.regions : [DEFAULT_REGION]
  const plan = planPorts(base)
  const ids = Array.from({ length: count }, randomMachineId)
  const { machines, peers, flycastUrl } = machineLayout(ids, regions, app, FIRST_BLOCK_PORT, plan.blockSize)
  const problems = new Set<string>()
  const warnings = new Set<string>()
  const data = await dataFolders(ids, app, undefined)
  try {
    for (const [i, machine] of machines.entries()) {
      const port = FIRST_BLOCK_PORT + i * plan.blockSize
      const env = machineEnv(machine, app, port, data.dirs[machine.id], options.env)
      const own = loadMachineConfig(ownConfigText(base, port, env), file, env, true)
      if (typeof own === 'string') {
        for (const line of lines(own)) problems.add(line)
        continue
      }
      for (const warning of own.warnings) warnings.add(formatProblem({ ...warning, message: `warning: ${warning.message}` }))
      const copy = loadMachineConfig(machineConfigText(base, port, peers, { flycastUrl, env }), file, env)
      if (typeof copy === 'string') {
        problems.add(invalidCopyMessage(file, copy))
        continue
      }
      const unmoved = unmovedPorts(copy, port, plan)
      if (unmoved.length > 0) problems.add(unmovedMessage(file, unmoved))
    }
  } finally {
    await data.remove()
  }
  return { problems: [...problems], warnings: [...warnings] }
}
