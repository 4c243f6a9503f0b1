// A Machine that accepts the connection and resets it before any byte of an answer, as a Machine being killed does
// for a moment (the kernel completes the handshake, the dying process never answers).
import { test } from 'tap'
import { request, startEdge, startTestMachine, type MachineHandler } from './fixtures.js'

const reset: MachineHandler = (req) => {
  req.socket.destroy()
  return true
}

test('a GET reset before any answer is delivered to the next Machine: the client never sees the reset', async (t) => {
  const dying = await startTestMachine(t, 'dying', reset)
  const healthy = await startTestMachine(t, 'healthy')
  const edge = await startEdge(t, { app: 'demo', machines: [{ id: 'dying', url: dying.url }, { id: 'healthy', url: healthy.url }] })
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await request(`${edge.url}/page`)).status)
  t.same(statuses, Array(6).fill(200), 'every GET was served')
  t.ok(dying.received.length >= 3, `the dying Machine got (and reset) ${dying.received.length} of them`)
  t.equal(healthy.received.length, 6, 'the healthy one served all six')
})

test('a POST reset before any answer is a 502 from the edge, never sent to a second Machine (it may have run)', async (t) => {
  const dying = await startTestMachine(t, 'dying', reset)
  const healthy = await startTestMachine(t, 'healthy')
  const edge = await startEdge(t, { app: 'demo', machines: [{ id: 'dying', url: dying.url }, { id: 'healthy', url: healthy.url }] })
  const replies = []
  for (let i = 0; i < 4; i++) replies.push(await request(`${edge.url}/form`, { method: 'POST', body: 'x=1' }))
  const onDying = dying.received.length
  t.equal(replies.filter((r) => r.status === 502).length, onDying, 'each POST the dying Machine reset is a 502')
  t.equal(replies.filter((r) => r.status === 200).length, 4 - onDying)
  t.equal(healthy.received.length, 4 - onDying, 'no POST reached two Machines')
  t.ok(onDying >= 1)
})
