import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'tap'
import type { HookConfig } from '@navigator/config'
import { HookFailedError, runHooks, runHooksOrFail, type HookRun } from '../src/index.js'
import { recordingLogger } from './helpers.js'

const node = (script: string, extra: Partial<HookConfig> = {}): HookConfig =>
  ({ command: process.execPath, args: ['-e', script], timeoutMs: 0, reloadConfig: null, ...extra })

function run (reloads: string[] = [], currentFile: string | null = null): HookRun & { lines: any[] } {
  const { logger, lines } = recordingLogger()
  return {
    name: 'server.ready',
    env: process.env,
    cwd: tmpdir(),
    logger,
    lines,
    lookup: (name) => ({ who: 'world' } as Record<string, string>)[name],
    reload: { currentFile: () => currentFile, reload: async (file) => { reloads.push(file) } }
  }
}

test('hooks run in order; a failed one is logged with its reason and does not skip the next', async (t) => {
  const context = run()
  const outcomes = await runHooks([
    node('console.log("hello " + process.argv[1]); process.exit(2)', { args: ['-e', 'console.log("hello " + process.argv[1]); process.exit(2)', '${who}'] }),
    node('console.log("second")'),
    { command: 'no-such-command-anywhere', args: [], timeoutMs: 0, reloadConfig: null },
    node('', { args: ['${nobody}'] })
  ], context)
  t.same(outcomes.map((outcome) => outcome.ok), [false, true, false, false])
  t.same(outcomes[0].output, ['hello world'], '${name} resolved through lookup')
  t.equal(outcomes[0].reason, 'exited with status 2')
  t.match(outcomes[2].reason, /not found/)
  t.match(outcomes[3].reason, /\$\{nobody\} is not defined/)
  t.ok(context.lines.some((line) => line.msg === 'hello world' && line.hook === 'server.ready'), 'output logged with the hook\'s name')
})

test('runHooksOrFail throws HookFailedError with the output; a hang is killed at its timeout', async (t) => {
  const context = run()
  await t.rejects(runHooksOrFail([node('console.log("it broke"); process.exit(1)')], context), {
    code: new HookFailedError('x', 'y').code,
    message: /server\.ready.*exited with status 1\nit broke/s
  })
  const startedAt = Date.now()
  const [outcome] = await runHooks([node('setInterval(() => {}, 1000)', { timeoutMs: 200 })], context)
  t.match(outcome.reason, /timeout of 200 ms/)
  t.ok(Date.now() - startedAt < 3000)
})

test('reload_config reloads only another file, or the same file when the hook changed it, and never a missing one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'navigator-hooks-'))
  const current = join(dir, 'navigator.yml')
  const other = join(dir, 'other.yml')
  writeFileSync(current, 'a: 1\n')
  writeFileSync(other, 'a: 2\n')
  const old = new Date(Date.now() - 60_000)
  utimesSync(current, old, old)

  const reloads: string[] = []
  await runHooks([node('', { reloadConfig: current })], run(reloads, current))
  t.same(reloads, [], 'unchanged running file: no reload')
  await runHooks([node('', { reloadConfig: other })], run(reloads, current))
  t.same(reloads, [other], 'another file: reloaded')
  await runHooks([node(`require('fs').writeFileSync(${JSON.stringify(current)}, 'a: 3\\n')`, { reloadConfig: current })], run(reloads, current))
  t.same(reloads, [other, current], 'changed by the hook: reloaded')
  await runHooks([node('', { reloadConfig: join(dir, 'missing.yml') })], run(reloads, current))
  await runHooks([node('process.exit(1)', { reloadConfig: other })], run(reloads, current))
  t.same(reloads, [other, current], 'a missing file or a failed hook: no reload')
})
