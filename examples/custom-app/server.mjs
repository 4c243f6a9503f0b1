// One Machine: this Machine's upstream and the app in front of it. Configured by the environment:
//   FLY_MACHINE_ID   this Machine (set by Fly; locally, any lower-case ID such as m1)
//   PORT             where the app listens (3000); every Machine must use the same one on Fly
//   UPSTREAM_PORT    where this Machine's upstream listens (PORT + 1), always on 127.0.0.1
//   HOST             the app's address (127.0.0.1; on Fly, where FLY_APP_NAME is set, ::)
//   PEERS            the other Machines when there is no Fly DNS: m2=http://127.0.0.1:3100,m3=...
//   STICKY_SECRET    signs the cookie (optional)
import { startUpstream } from './upstream.mjs'
import { buildApp } from './app.mjs'

/** "m2=http://127.0.0.1:3100,m3=http://127.0.0.1:3200" as { m2: ..., m3: ... }. */
function parsePeers (text = '') {
  const peers = {}
  for (const entry of text.split(',').filter((each) => each.trim() !== '')) {
    const [id, url] = entry.split('=').map((part) => part.trim())
    peers[id] = url
  }
  return peers
}

const env = process.env
const onFly = env.FLY_APP_NAME !== undefined
const port = Number(env.PORT ?? 3000)
const upstreamPort = Number(env.UPSTREAM_PORT ?? port + 1)

const upstream = await startUpstream({ machine: env.FLY_MACHINE_ID ?? 'local', port: upstreamPort })
const app = await buildApp({
  machineId: env.FLY_MACHINE_ID,
  upstream: `http://127.0.0.1:${upstreamPort}`,
  peers: parsePeers(env.PEERS),
  port,
  onFly,
  secret: env.STICKY_SECRET || undefined,
  upstreamStats: upstream.stats
})
app.addHook('onClose', () => upstream.close())

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

await app.listen({ port, host: env.HOST ?? (onFly ? '::' : '127.0.0.1') })
