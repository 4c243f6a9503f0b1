// `fly-edge --check`: a config written for the edge, checked with the edge's variables as every Machine reads it.
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { test, type Test } from 'tap'
import { DEFAULT_NAVIGATOR_BIN } from '../src/launch.js'

const BIN = fileURLToPath(new URL('../bin/fly-edge.js', import.meta.url))
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
const RAILS_CONFIG = fileURLToPath(new URL('../../../examples/rails/navigator.yml', import.meta.url))

interface Result { code: number, stdout: string, stderr: string }

async function run (script: string, args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [script, ...args], { env: { ...process.env, PORT: '' } })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const failed = err as { code: number, stdout: string, stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

async function configFile (t: Test, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fly-edge-check-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'navigator.yml')
  await writeFile(file, text)
  return file
}

// Every form the edge documents: a bare ${NAVIGATOR_PORT}, an offset as a whole value, NAVIGATOR_DATA in a tenant's
// var, and a standalone server taking its port as ${PORT} in its args.
const FOR_THE_EDGE = `server:
  listen: \${NAVIGATOR_PORT}
applications:
  start_port: \${NAVIGATOR_PORT+2}
  tenants:
    - name: app
      path: /app
      working_dir: ${FIXTURES}
      command: node
      args: [port-server.mjs, "\${PORT}"]
      var: { data: "\${NAVIGATOR_DATA}" }
      env:
        DATABASE_URL: "sqlite3:\${data}/app.sqlite3"
  standalone_servers:
    - name: port-server
      match_path: /port
      command: node
      args: [port-server.mjs, "\${PORT}"]
      working_dir: ${FIXTURES}
      port: 4001
`

test('fly-edge --check accepts the edge\'s variables that navigator --check alone rejects', async (t) => {
  const config = await configFile(t, FOR_THE_EDGE)
  const alone = await run(DEFAULT_NAVIGATOR_BIN, ['--check', config])
  t.equal(alone.code, 2, 'navigator --check alone does not know the edge\'s variables')
  t.match(alone.stderr, /\$\{NAVIGATOR_PORT\} is not set in the environment/)

  const edge = await run(BIN, ['--check', '--config', config, '--machines', '2'])
  t.equal(edge.code, 0, edge.stderr)
  t.equal(edge.stdout, `${config}: ok for 2 Machines behind the edge\n`)
  t.equal(edge.stderr, '')
  t.same((await readdir(join(config, '..'))), ['navigator.yml'], 'nothing is written beside the config')
})

test('fly-edge --check accepts the Rails example\'s own navigator.yml', async (t) => {
  const edge = await run(BIN, ['--check', '--config', RAILS_CONFIG, '--machines', '2'])
  t.equal(edge.code, 0, edge.stderr)
  t.match(edge.stdout, /navigator\.yml: ok for 2 Machines behind the edge/)
})

test('fly-edge --check prints each problem once at file:line:column as navigator does and exits 2', async (t) => {
  const config = await configFile(t, FOR_THE_EDGE.replace('  start_port: ${NAVIGATOR_PORT+2}', '  start_port: ${NAVIGATOR_PORT+2}\n  startup_timout: 5s'))
  const edge = await run(BIN, ['--check', '--config', config, '--machines', '3'])
  t.equal(edge.code, 2)
  t.equal(edge.stdout, '')
  const lines = edge.stderr.trim().split('\n')
  t.same(lines, [`${config}:5:3: applications.startup_timout: unknown key \`startup_timout\`; did you mean \`startup_timeout\`?`], 'the schema problem, once for all Machines')

  const missing = await configFile(t, FOR_THE_EDGE.replace(`      working_dir: ${FIXTURES}\n      port: 4001`, `      working_dir: ${join(FIXTURES, 'no-such-folder')}\n      port: 4001`))
  const paths = await run(BIN, ['--check', '--config', missing])
  t.equal(paths.code, 2)
  t.match(paths.stderr, new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:19:20: applications\\.standalone_servers\\.0\\.working_dir: .*no-such-folder`, 'm'),
    'a folder that does not exist is named, as navigator --check names it')
  t.equal(paths.stderr.trim().split('\n').length, 1)
})

test('fly-edge --check refuses a port it could not give each Machine, and a file it cannot read', async (t) => {
  const flow = await configFile(t, 'server:\n  listen: 3000\napplications: { start_port: 4100 }\n')
  const unmoved = await run(BIN, ['--check', '--config', flow, '--machines', '2'])
  t.equal(unmoved.code, 2)
  t.match(unmoved.stderr, /cannot give each Machine its own applications\.start_port/)
  const none = await run(BIN, ['--check', '--config', join(flow, '..', 'absent.yml')])
  t.equal(none.code, 2)
  t.match(none.stderr, /absent\.yml:1:1: cannot read the config file \(ENOENT\)/)
})
