import { connect, createServer, type Server } from 'node:net'

// A TCP relay that counts the connections made through it: to see whether the proxy
// reuses its upstream connections.

export interface TcpCounter {
  readonly port: number
  readonly url: string
  connections(): number
  close(): Promise<void>
}

export async function tcpCounter(targetPort: number): Promise<TcpCounter> {
  let count = 0
  const sockets = new Set<import('node:net').Socket>()
  const server: Server = createServer((client) => {
    count++
    const upstream = connect(targetPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as import('node:net').AddressInfo).port
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => count,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
