import type { Config } from '../config/schema.js'
import { MemoryLedgerStore } from '../ledger/memory-store.js'
import type { LedgerStore } from '../ledger/push-record.js'
import type { Logger } from '../observability/logger.js'
import { CachedSource } from '../upstream/cached-source.js'
import { ExistenceCache } from '../upstream/existence-cache.js'
import { passthroughDispatcher, type Requestable } from '../upstream/passthrough-dispatcher.js'
import { RegistryClient } from '../upstream/registry-client.js'

// Everything one proxy instance is made of, built once from the config.

export interface Services {
  readonly config: Config
  readonly logger: Logger
  readonly client: RegistryClient
  readonly cache: ExistenceCache
  readonly source: CachedSource
  readonly ledger: LedgerStore
  readonly passthrough: Requestable
}

export interface ServiceOverrides {
  readonly ledger?: LedgerStore
}

/** Connections kept to the registry for client traffic; HEAD/GET storms reuse them. */
const PASSTHROUGH_CONNECTIONS = 128
/** Connections for the proxy's own lookups, apart so they never queue behind a blob. */
const LOOKUP_CONNECTIONS = 32

export function createServices(config: Config, logger: Logger, overrides: ServiceOverrides = {}): Services {
  const timeouts = {
    connectTimeoutMs: config.upstreamTimeouts.connectMs,
    headersTimeoutMs: config.upstreamTimeouts.headersMs,
    bodyTimeoutMs: config.upstreamTimeouts.bodyMs,
  }
  const client = new RegistryClient({ origin: config.upstream, connections: LOOKUP_CONNECTIONS, ...timeouts })
  const cache = new ExistenceCache({
    ttlMs: config.cache.ttlSeconds * 1000,
    maxEntries: config.cache.maxEntries,
    maxManifestBytes: config.cache.maxManifestBytes,
  })
  return {
    config,
    logger,
    client,
    cache,
    source: new CachedSource(client, cache),
    ledger: overrides.ledger ?? new MemoryLedgerStore(config.ledger.maxRecords),
    passthrough: passthroughDispatcher({ origin: config.upstream, connections: PASSTHROUGH_CONNECTIONS, ...timeouts }),
  }
}

export async function closeServices(services: Services): Promise<void> {
  await Promise.allSettled([services.client.close(), services.passthrough.close(), services.ledger.close()])
}
