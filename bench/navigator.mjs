// Starts one Navigator process for a benchmark from a YAML body, pinned to the proxy core.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NAVIGATOR_BIN, PROXY_CORE, freePort, spawnPinned, waitForPort } from './lib.mjs'

export async function startNavigator (yamlForPort, env = {}) {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'navigator-bench-'))
  writeFileSync(join(dir, 'navigator.yml'), yamlForPort(port))
  const child = spawnPinned(PROXY_CORE, process.execPath, [NAVIGATOR_BIN, join(dir, 'navigator.yml')], {
    env: { FLY_APP_NAME: 'bench', FLY_REGION: 'lcl', LOG_LEVEL: 'info', ...env }
  })
  await waitForPort(port)
  return { port, child, dir }
}
