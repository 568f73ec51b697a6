import { Pool, type Dispatcher } from 'undici'

// The connection pool that carries client traffic through to the registry, shaped as the
// "requestable" @fastify/reply-from accepts in place of an undici instance.

export interface PassthroughOptions {
  readonly origin: string
  readonly connections: number
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
}

export interface Requestable {
  request(options: Dispatcher.RequestOptions, callback: (err: Error | null, data: Dispatcher.ResponseData) => void): void
  close(): Promise<void>
  destroy(): Promise<void>
}

export function passthroughDispatcher(options: PassthroughOptions): Requestable {
  const pool = new Pool(options.origin, {
    connections: options.connections,
    pipelining: 1,
    connect: { timeout: options.connectTimeoutMs },
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
  })
  return {
    request(requestOptions, callback) {
      // undici closes the connection after every HEAD (nodejs/undici#258, against servers that
      // send a body anyway). Registries do not, and clients HEAD every blob before pushing it:
      // reconnecting each time costs two TCP handshakes per request (DESIGN.md §7).
      if (requestOptions.method === 'HEAD') requestOptions.reset = false
      pool.request(requestOptions, callback)
    },
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  }
}
