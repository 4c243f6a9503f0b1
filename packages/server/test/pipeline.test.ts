import { test } from 'tap'
import { parseConfig } from '@navigator/config'
import { buildServer } from '../src/server.js'
import { tempDir } from './helpers.js'

const ENV = { LOG_LEVEL: 'silent', FLY_MACHINE_ID: 'm1abc', FLY_APP_NAME: 'navtest', FLY_REGION: 'ord' }

async function build (t: { teardown (fn: () => unknown): void }, yaml: string, files: Record<string, string> = {}) {
  const dir = tempDir(files)
  const navigator = await buildServer(parseConfig(yaml, { dir }), { env: ENV })
  t.teardown(async () => { await navigator.close() })
  return navigator
}

const ORDERED = `
server:
  listen: "127.0.0.1:0"
  health_check: /api/up
routes:
  rewrites:
    - pattern: "^/assets/(.*)"
      rewrite: "/api/$1"
  fly:
    replay:
      - path: "^/api/"
        region: iad
`

test('the steps run in order: health check, then static files, then replay rules, then 404', async (t) => {
  const navigator = await build(t, ORDERED, { 'public/api/file.txt': 'static\n' })
  const app = navigator.fastify

  const health = await app.inject('/api/up')
  t.equal(health.statusCode, 200, 'the health check wins over the replay rule')

  const file = await app.inject('/api/file.txt')
  t.equal(file.statusCode, 200, 'a static file wins over the replay rule')
  t.equal(file.body, 'static\n')

  const replayed = await app.inject('/api/other')
  t.equal(replayed.statusCode, 307, 'the replay rule answers what Navigator does not serve itself')
  t.match(replayed.headers['fly-replay'], /region=iad/)

  const rewritten = await app.inject('/assets/file.txt')
  t.equal(rewritten.statusCode, 200, 'static files use the forwarded path')
  t.equal(rewritten.body, 'static\n')

  const rewrittenMiss = await app.inject('/assets/missing')
  t.equal(rewrittenMiss.statusCode, 404, 'replay rules use the original path, which does not match')

  t.equal((await app.inject('/elsewhere')).statusCode, 404)
})

test('a request body is never parsed, limited or refused by Fastify (no 413, no 415)', async (t) => {
  const navigator = await build(t, 'server:\n  listen: "127.0.0.1:0"\n')
  const big = Buffer.alloc(2 * 1024 * 1024, 1)
  const json = await navigator.fastify.inject({ method: 'POST', url: '/x', headers: { 'content-type': 'application/json' }, payload: big })
  t.equal(json.statusCode, 404)
  const odd = await navigator.fastify.inject({ method: 'PUT', url: '/x', headers: { 'content-type': 'application/x-unknown' }, payload: 'data' })
  t.equal(odd.statusCode, 404)
})

test('reload swaps the pipeline without replacing the http server', async (t) => {
  const navigator = await build(t, 'server:\n  listen: "127.0.0.1:0"\n  health_check: /up\n')
  const server = navigator.server
  const before = navigator.fastify
  t.equal((await before.inject('/up')).statusCode, 200)
  await navigator.reload(parseConfig('server:\n  listen: "127.0.0.1:0"\n  health_check: /healthz\n', { dir: tempDir() }))
  t.not(navigator.fastify, before, 'a new Fastify instance answers')
  t.equal(navigator.server, server, 'the same http server keeps listening')
  t.equal((await navigator.fastify.inject('/healthz')).statusCode, 200)
  t.equal((await navigator.fastify.inject('/up')).statusCode, 404)
})
