// Fastify answering the request itself: the same small 307 + fly-replay answer that
// Navigator gives for a cookie naming another Machine, with no proxying at all.
import Fastify from 'fastify'

const port = Number(process.argv[2])
const app = Fastify({ logger: false })
app.all('/*', (request, reply) => {
  reply.code(307).header('fly-replay', 'instance=m2;state=nav-sticky;timeout=10s;fallback=force_self').send('')
})
await app.listen({ port, host: '127.0.0.1' })
process.stdout.write(`listening ${port}\n`)
