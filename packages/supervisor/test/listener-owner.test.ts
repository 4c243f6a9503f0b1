import { spawn } from 'node:child_process'
import net from 'node:net'
import { once } from 'node:events'
import { test } from 'tap'
import { listenerOwner } from '../src/listener-owner.js'
import { readFileSync } from 'node:fs'
import { fixture, freePort } from './helpers.js'

/** This process's group (the test runner may not make it a group leader). */
function ownGroup (): number {
  const stat = readFileSync('/proc/self/stat', 'latin1')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
}

// Who holds a port, read from the kernel's socket tables: what tells a standalone server's own listener from a
// stranger's on the same port (a TCP connection cannot).

test('listenerOwner tells our process group\'s listener from another process\'s, and an unused port', { skip: process.platform !== 'linux' && 'reads /proc (Linux only)' }, async (t) => {
  const ownPort = await freePort()
  const child = spawn(process.execPath, [fixture('tcp-server.mjs')], {
    detached: true,
    env: { ...process.env, PORT: String(ownPort) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { try { process.kill(-(child.pid as number), 'SIGKILL') } catch {} })
  await once(child.stdout!, 'data') // "tcp server ready"
  const pgid = child.pid as number

  const strangerPort = await freePort()
  const stranger = net.createServer()
  await new Promise<void>((resolve) => stranger.listen(strangerPort, '127.0.0.1', resolve))
  t.teardown(() => { stranger.close() })
  const wildcardPort = await freePort()
  const wildcard = net.createServer()
  await new Promise<void>((resolve) => wildcard.listen(wildcardPort, '0.0.0.0', resolve))
  t.teardown(() => { wildcard.close() })
  const unused = await freePort()

  t.equal(listenerOwner('127.0.0.1', ownPort, pgid), 'ours', 'the child listens on its port')
  t.equal(listenerOwner('127.0.0.1', strangerPort, pgid), 'other', 'this test process is a stranger to the child\'s group')
  t.equal(listenerOwner('127.0.0.1', wildcardPort, pgid), 'other', 'a stranger on 0.0.0.0 takes connections to 127.0.0.1 too')
  t.equal(listenerOwner('127.0.0.1', unused, pgid), 'none', 'nobody listens')
  t.equal(listenerOwner('127.0.0.1', strangerPort, ownGroup()), 'ours', 'seen from this process\'s own group, the same listener is ours')
  t.equal(listenerOwner('::1', ownPort, pgid), 'none', 'a listener on 127.0.0.1 does not take connections to ::1')
})
