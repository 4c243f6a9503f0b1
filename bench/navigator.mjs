// Starts one Navigator process for a benchmark from a YAML body, pinned to the proxy core.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NAVIGATOR_BIN, PROXY_CORE, LOAD_CORE, ROOT, freePort, spawnPinned, waitForPort } from './lib.mjs'

/**
 * A config with sticky sessions on and one eager tenant (bench/upstream.mjs, pinned to the load core) at "/";
 * `peers` ({ id: url }) for the sticky direct proxy.
 */
export function oneTenantConfig (port, peers = {}) {
  const peerLines = Object.entries(peers).map(([id, url]) => `        ${id}: ${url}\n`).join('')
  return `server:
  listen: ${port}
routes:
  fly:
    sticky_sessions:
      enabled: true
${peerLines === '' ? '' : `      peers:\n${peerLines}`}applications:
  command: taskset
  args: ["-c", "${LOAD_CORE}", "${process.execPath}", "${join(ROOT, 'bench/upstream.mjs')}", "\${PORT}", "m1"]
  tenants:
    - name: app
      path: /
      start: eager
`
}

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
