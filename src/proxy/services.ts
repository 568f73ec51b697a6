import { readSecret } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { ListIndex } from '../ledger/list-index.js'
import { MemoryLedgerStore } from '../ledger/memory-store.js'
import { RedisLedgerStore } from '../ledger/redis-store.js'
import type { LedgerStore } from '../ledger/push-record.js'
import { AuditFile } from '../observability/audit-file.js'
import type { Logger } from '../observability/logger.js'
import { Metrics } from '../observability/metrics.js'
import { Webhook } from '../observability/webhook.js'
import { CachedSource } from '../upstream/cached-source.js'
import { ManifestCache } from '../upstream/manifest-cache.js'
import type { Pool } from 'undici'
import { passthroughPool } from '../upstream/passthrough-pool.js'
import { RegistryClient } from '../upstream/registry-client.js'
import type { WalkLimits } from '../validate/walk.js'
import { DecisionRing } from '../observability/decision-ring.js'
import type { DecisionEvent } from './contracts.js'

// Everything one proxy instance is made of, built once from the config.

export interface Services {
  readonly config: Config
  readonly logger: Logger
  readonly metrics: Metrics
  readonly client: RegistryClient
  readonly cache: ManifestCache
  readonly source: CachedSource
  readonly ledger: LedgerStore
  /** Which tagged lists name which digests, for the delete guard. */
  readonly listIndex: ListIndex
  /** Client writes (uploads, manifest pushes, deletes) to the registry. */
  readonly passthrough: Pool
  /** Client reads (GET, HEAD): a pool of their own, so a stalled upload never holds one up. */
  readonly passthroughReads: Pool
  readonly decisions: DecisionRing<DecisionEvent>
  readonly audit: { readonly file: AuditFile | undefined; readonly webhook: Webhook | undefined }
}

export interface ServiceOverrides {
  readonly ledger?: LedgerStore
}

/** Connections kept to the registry for client traffic; HEAD/GET storms reuse them. */
const PASSTHROUGH_CONNECTIONS = 128
/** Connections for the proxy's own lookups, apart so they never queue behind a blob. */
const LOOKUP_CONNECTIONS = 32

/** The walk's bounds from the settings. */
export function walkLimitsOf(config: Config): WalkLimits {
  const v = config.validation
  return { maxDepth: v.maxDepth, maxDescriptors: v.maxDescriptors, concurrency: v.concurrency, timeoutMs: v.timeoutMs }
}

export function createServices(config: Config, logger: Logger, overrides: ServiceOverrides = {}): Services {
  const metrics = new Metrics()
  const timeouts = {
    connectTimeoutMs: config.upstreamTimeouts.connectMs,
    headersTimeoutMs: config.upstreamTimeouts.headersMs,
    bodyTimeoutMs: config.upstreamTimeouts.bodyMs,
  }
  const client = new RegistryClient({
    origin: config.upstream,
    connections: LOOKUP_CONNECTIONS,
    ...timeouts,
    onRequest: (kind, status) => metrics.upstreamLookups.inc({ kind, status: String(status) }),
  })
  const cache = new ManifestCache(config.cache.maxManifestBytes)
  const a = config.audit
  return {
    config,
    logger,
    metrics,
    client,
    cache,
    source: new CachedSource(client, cache),
    ledger: countingErrors(overrides.ledger ?? createLedger(config), metrics),
    listIndex: new ListIndex(config.deleteGuard.maxLists),
    passthrough: passthroughPool({ origin: config.upstream, connections: PASSTHROUGH_CONNECTIONS, ...timeouts }),
    passthroughReads: passthroughPool({ origin: config.upstream, connections: PASSTHROUGH_CONNECTIONS, ...timeouts }),
    decisions: new DecisionRing(config.admin.recentDecisions),
    audit: {
      file: a.file === undefined ? undefined : new AuditFile({ path: a.file, maxBytes: a.fileMaxBytes, keep: a.fileKeep, queueSize: a.queueSize }, metrics, logger),
      webhook:
        a.webhookUrl === undefined
          ? undefined
          : new Webhook(
              { url: a.webhookUrl, token: readSecret(a.webhookToken, a.webhookTokenFile), timeoutMs: a.webhookTimeoutMs, retries: a.webhookRetries, queueSize: a.queueSize },
              metrics,
              logger,
            ),
    },
  }
}

/** The ledger the settings describe: this process's memory, or the shared Redis store. */
export function createLedger(config: Config): LedgerStore {
  const l = config.ledger
  if (l.store === 'memory') return new MemoryLedgerStore(l.maxRecords)
  return new RedisLedgerStore({
    url: l.redisUrl as string,
    password: readSecret(l.redisPassword, l.redisPasswordFile),
    keyPrefix: l.redisKeyPrefix,
    ttlSeconds: l.ttlSeconds,
    maxTagsPerRepository: l.maxTagsPerRepository,
    commandTimeoutMs: l.redisTimeoutMs,
  })
}

/** Counts ledger failures in the metrics; callers still see (and survive) each error. */
function countingErrors(store: LedgerStore, metrics: Metrics): LedgerStore {
  const counted = <T>(operation: string, run: () => Promise<T>): Promise<T> =>
    run().catch((err: unknown) => {
      metrics.ledgerErrors.inc({ operation })
      throw err
    })
  return {
    record: (r) => counted('record', () => store.record(r)),
    pushesOf: (d) => counted('read', () => store.pushesOf(d)),
    tagHistory: (repo, tag) => counted('read', () => store.tagHistory(repo, tag)),
    close: () => store.close(),
  }
}

export async function closeServices(services: Services): Promise<void> {
  // Audit records already queued are delivered (or fail and are counted) before exit.
  await Promise.allSettled([services.audit.file?.drained(), services.audit.webhook?.drained()])
  await Promise.allSettled([services.client.close(), services.passthrough.close(), services.passthroughReads.close(), services.ledger.close()])
}
