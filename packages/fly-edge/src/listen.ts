import type { AddressInfo, Server } from 'node:net'

/** Listen on host:port (0 picks a free port) and resolve with the address; reject on a listen error. */
export function listenOn (server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => { reject(err) }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve(server.address() as AddressInfo)
    })
  })
}

/** `http://host:port` of a listening address, with an IPv6 host in brackets. */
export function originOf (address: { address: string, port: number }): string {
  const host = address.address.includes(':') ? `[${address.address}]` : address.address
  return `http://${host}:${address.port}`
}
