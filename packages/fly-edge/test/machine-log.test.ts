import { test } from 'tap'
import { noteworthyOutput } from '../src/machine-log.js'

test('without --verbose a Machine\'s warnings and errors are shown, in short, and its other log lines are not', async (t) => {
  const json = (entry: Record<string, unknown>): string => JSON.stringify({ time: 1, ...entry })
  t.equal(noteworthyOutput(json({ level: 30, msg: 'listening', address: 'http://127.0.0.1:3000' })), null)
  t.equal(noteworthyOutput(json({ level: 20, msg: 'request completed' })), null)
  t.equal(noteworthyOutput(json({ level: 40, process: 'cable', code: 1, signal: null, msg: 'standalone server exited unexpectedly' })),
    'warn cable: standalone server exited unexpectedly (code 1)')
  t.equal(noteworthyOutput(json({ level: 40, process: 'cable', stream: 'stderr', msg: 'Address already in use' })),
    'warn cable (stderr): Address already in use')
  t.equal(noteworthyOutput(json({ level: 50, process: 'a', reason: 'spawn bin/tenant ENOENT', msg: 'tenant cannot start' })),
    'error a: tenant cannot start (reason spawn bin/tenant ENOENT)')
  t.equal(noteworthyOutput(json({ level: 60, msg: 'boom', err: { message: 'EADDRINUSE' } })), 'fatal: boom (EADDRINUSE)')
  t.equal(noteworthyOutput('2026-01-01T00:00:00.000Z INFO listening address=http://127.0.0.1:3000'), null, 'text log lines too')
  t.equal(noteworthyOutput('2026-01-01T00:00:00.000Z WARN port 4001 is in use by another process'),
    '2026-01-01T00:00:00.000Z WARN port 4001 is in use by another process')
  t.equal(noteworthyOutput('navigator: listen EADDRINUSE: address already in use :::3000'),
    'navigator: listen EADDRINUSE: address already in use :::3000', 'a line that is not a log line is shown')
  t.equal(noteworthyOutput('   '), null)
})
