// Types of scripts/dockerfile-steps.mjs, for the tests that import it.

/** One stage: a folder standing for the image's root, and what the Dockerfile set for it. */
export interface Stage {
  index: number
  name: string | null
  base: string
  dir: string
  workdir: string
  env: Record<string, string>
  args: Record<string, string>
  user: string | null
  cmd: string[] | null
  expose: string[]
}

/** A step that was not run, and why. */
export interface Skipped {
  line: number
  step: string
  reason: string
}

export interface Build {
  stages: Stage[]
  final: Stage
  skipped: Skipped[]
  timings: Array<{ line: number, keyword: string, ms: number, cached?: boolean }>
  ignoreFile: string | null
}

export function runDockerfile (options: {
  file: string
  context: string
  root: string
  buildArgs?: Record<string, string>
  /** Whole stages built before, by key: Docker's layer cache, kept by the caller across builds. */
  cache?: Map<string, unknown>
  log?: (text: string) => void
}): Promise<Build>

export function stageEnv (stage: Stage, extra?: Record<string, string>): Record<string, string>

export function resolveCommand (stage: Stage, command: string): { path: string, inStage: boolean } | null

export function parseDockerfile (text: string): Array<{ line: number, keyword: string, rest: string }>

export function dockerignore (text: string): { excluded: (path: string) => boolean, enter: (dir: string) => boolean }
