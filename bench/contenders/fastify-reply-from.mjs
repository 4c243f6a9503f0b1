// The "minimal Fastify + @fastify/reply-from cookie proxy" contender of issue 6.
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'

const [port, m1, m2] = process.argv.slice(2).map(Number)
const app = Fastify({ logger: false })
await app.register(replyFrom, { undici: { connections: 128, pipelining: 1 } })
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', (request, payload, done) => done(null))
const origins = { m1: `http://127.0.0.1:${m1}`, m2: `http://127.0.0.1:${m2}` }
app.all('/*', (request, reply) => {
  const cookie = request.headers.cookie ?? ''
  const match = /(?:^|;\s*)_navigator_machine=([^;]*)/.exec(cookie)
  const machine = match && origins[match[1]] ? match[1] : 'm1'
  if (!match) reply.header('set-cookie', `_navigator_machine=${machine}; Path=/; HttpOnly; SameSite=Lax`)
  return reply.from(origins[machine] + request.url)
})
await app.listen({ port, host: '127.0.0.1' })
process.stdout.write(`listening ${port}\n`)
