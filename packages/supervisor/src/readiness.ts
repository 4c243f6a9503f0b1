import http from 'node:http'
import net from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'

/** How often a starting process is probed. */
export const READINESS_INTERVAL_MS = 100
/** How long one probe may take before it counts as "not ready yet". */
export const PROBE_TIMEOUT_MS = 2000

/** True when `GET http://host:port<path>` gets any HTTP response at all (a 500 still proves the app is up). */
export function probeHttp (host: string, port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host, port, path, agent: false, timeout: PROBE_TIMEOUT_MS }, (response) => {
      response.resume()
      resolve(true)
    })
    request.once('timeout', () => request.destroy())
    request.once('error', () => resolve(false))
  })
}

/** True when a TCP connection to `host:port` is accepted. */
export function probeTcp (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.setTimeout(PROBE_TIMEOUT_MS, () => socket.destroy())
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
    socket.once('close', () => resolve(false))
  })
}

/**
 * Runs `probe` every READINESS_INTERVAL_MS until it returns true. Rejects with an AbortError when
 * `signal` aborts, which is how callers give up (deadline reached, process exited, stop asked).
 */
export async function pollUntilReady (probe: () => Promise<boolean>, signal: AbortSignal): Promise<void> {
  while (true) {
    signal.throwIfAborted()
    if (await probe()) return
    await delay(READINESS_INTERVAL_MS, undefined, { signal })
  }
}
