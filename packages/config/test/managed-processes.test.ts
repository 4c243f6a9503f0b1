import { test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, parseConfig } from '../src/load.js'

function problems (yaml: string, launchPaths = false): string[] {
  try {
    parseConfig(yaml, { file: 'navigator.yml', dir: '/srv/app', env: { PATH: '/bin:/usr/bin' }, launchPaths })
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n')
    throw err
  }
  return []
}

test('managed_processes are normalised with their defaults, start_delay in seconds or as a duration', async (t) => {
  const config = parseConfig(`
managed_processes:
  - name: redis
    command: redis-server
    args: [--port, 6379]
  - name: worker
    command: bin/jobs
    working_dir: app
    env: { QUEUE: high, THREADS: 5 }
    auto_restart: true
    start_delay: 2
  - name: monitor
    command: ./monitor.sh
    start_delay: 1500ms
`, { dir: '/srv/app', env: {} })
  t.same(config.managedProcesses, [
    { name: 'redis', command: 'redis-server', args: ['--port', '6379'], workingDir: '/srv/app', env: {}, autoRestart: false, startDelayMs: 0 },
    { name: 'worker', command: 'bin/jobs', args: [], workingDir: '/srv/app/app', env: { QUEUE: 'high', THREADS: '5' }, autoRestart: true, startDelayMs: 2000 },
    { name: 'monitor', command: './monitor.sh', args: [], workingDir: '/srv/app', env: {}, autoRestart: false, startDelayMs: 1500 }
  ])
})

test('a duplicate name, a missing command and a bad start_delay are reported at their positions', async (t) => {
  t.same(problems(`managed_processes:
  - name: worker
    command: a
  - name: worker
    start_delay: soon
`), [
    'navigator.yml:4:5: managed_processes.1.command: missing required key `command`',
    'navigator.yml:4:11: managed_processes.1.name: duplicate managed process name `worker` (also managed_processes.0.name)',
    'navigator.yml:5:18: managed_processes.1.start_delay: must be a Go duration such as 500ms or 2s, or a whole number of seconds'
  ])
})

test('launch paths: a missing working directory or command of a managed process is reported', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'managed-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const lines = problems(`managed_processes:
  - name: gone
    command: sh
    working_dir: ${join(dir, 'nowhere')}
  - name: missing
    command: no-such-program-here
    working_dir: ${dir}
  - name: fine
    command: sh
    working_dir: ${dir}
`, true)
  t.equal(lines.length, 2)
  t.match(lines[0], /^navigator\.yml:4:18: managed_processes\.0\.working_dir: the working directory .*nowhere does not exist/)
  t.match(lines[1], /^navigator\.yml:6:14: managed_processes\.1\.command: the command "no-such-program-here" is not on PATH/)
})
