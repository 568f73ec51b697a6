import { Pool } from 'undici'

// The connection pool that carries client traffic through to the registry, apart from the
// pool of the proxy's own lookups so those never queue behind a blob.

export interface PassthroughOptions {
  readonly origin: string
  readonly connections: number
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
  /** CA certificates a TLS registry's certificate may chain to (default: the system's). */
  readonly ca?: readonly string[] | undefined
}

export function passthroughPool(options: PassthroughOptions): Pool {
  return new Pool(options.origin, {
    connections: options.connections,
    pipelining: 1,
    connect: { timeout: options.connectTimeoutMs, ...(options.ca === undefined ? {} : { ca: [...options.ca] }) },
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
    // Keep idle connections long enough to carry bursts of HEADs between pushes.
    keepAliveTimeout: 30_000,
  })
}
