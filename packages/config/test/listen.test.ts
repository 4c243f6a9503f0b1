import { test } from 'tap'
import { parseListen } from '../src/listen.js'

test('listen accepts a port, ":port", "host:port" and "[ipv6]:port"', async (t) => {
  t.same(parseListen(3000), { host: '::', port: 3000 })
  t.same(parseListen(0), { host: '::', port: 0 }, 'port 0 lets the OS choose (tests)')
  t.same(parseListen('8080'), { host: '::', port: 8080 })
  t.same(parseListen(':8080'), { host: '::', port: 8080 })
  t.same(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 })
  t.same(parseListen('localhost:1'), { host: 'localhost', port: 1 })
  t.same(parseListen('[::1]:3000'), { host: '::1', port: 3000 })
})

test('listen rejects anything else with the reason', async (t) => {
  for (const value of [-1, 65536, 3.5, '', 'host', 'host:', 'host:port', ':70000', '::1:3000', 'a b:1', '[::1]']) {
    t.throws(() => parseListen(value), TypeError, JSON.stringify(value))
  }
  t.throws(() => parseListen(true as unknown as number), /port number or a "host:port" string/)
})
