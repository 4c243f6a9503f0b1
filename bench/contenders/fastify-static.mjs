// @fastify/static alone, serving the same folder as Navigator in bench/static.mjs.
import Fastify from 'fastify'
import fastifyStatic from '@fastify/static'

const [port, root] = [Number(process.argv[2]), process.argv[3]]
const app = Fastify({ logger: false })
await app.register(fastifyStatic, { root, preCompressed: true, index: false })
await app.listen({ port, host: '127.0.0.1' })
process.stdout.write(`listening ${port}\n`)
