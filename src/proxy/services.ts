import { readFileSync } from 'node:fs'
import { rootCertificates } from 'node:tls'
import { readSecret } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { GuardedLedger } from '../ledger/guarded-ledger.js'
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
import { ClientSlots } from './client-slots.js'
import { ListBodyBudget } from './list-body-budget.js'
import { MAX_MANIFEST_BYTES } from '../upstream/registry-client.js'

// Everything one proxy instance is made of, built once from the config.

export interface Services {
  readonly config: Config
  readonly logger: Logger
  readonly metrics: Metrics
  readonly client: RegistryClient
  readonly cache: ManifestCache
  readonly source: CachedSource
  /** The push ledger, its faults bounded and counted (guarded-ledger.ts). */
  readonly ledger: GuardedLedger
  /** Which tagged lists name which digests, for the delete guard. */
  readonly listIndex: ListIndex
  /** Client writes (uploads, manifest pushes, deletes) to the registry. */
  readonly passthrough: Pool
  /** Client reads (GET, HEAD): a pool of their own, so a stalled upload never holds one up. */
  readonly passthroughReads: Pool
  /** Writes in flight per client address (server.maxUploadsPerClient), list pushes from before their body is read. */
  readonly writeSlots: ClientSlots
  /** List bodies held in memory (server.maxBufferedListBytes). */
  readonly listBodies: ListBodyBudget
  readonly decisions: DecisionRing<DecisionEvent>
  readonly audit: { readonly file: AuditFile | undefined; readonly webhook: Webhook | undefined }
  /** The shutdown's steps (drain.ts): draining from SIGTERM on (readiness fails), closing once the listener closes. */
  readonly lifecycle: { draining: boolean; closing: boolean }
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

/** The system's CAs plus caFile's, for every TLS connection the proxy makes; undefined: the system's only. */
export function trustedCas(config: Config): readonly string[] | undefined {
  return config.caFile === undefined ? undefined : [...rootCertificates, readFileSync(config.caFile, 'utf8')]
}

export function createServices(config: Config, logger: Logger, overrides: ServiceOverrides = {}): Services {
  const metrics = new Metrics()
  const ca = trustedCas(config)
  const timeouts = {
    ca,
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
    ledger: guardedLedger(overrides.ledger ?? createLedger(config, ca), config, metrics, logger),
    listIndex: new ListIndex(config.deleteGuard.maxLists),
    passthrough: passthroughPool({ origin: config.upstream, connections: PASSTHROUGH_CONNECTIONS, ...timeouts }),
    passthroughReads: passthroughPool({ origin: config.upstream, connections: PASSTHROUGH_CONNECTIONS, ...timeouts }),
    writeSlots: new ClientSlots(config.server.maxUploadsPerClient),
    listBodies: new ListBodyBudget(config.server.maxBufferedListBytes, MAX_MANIFEST_BYTES),
    decisions: new DecisionRing(config.admin.recentDecisions),
    audit: {
      file: a.file === undefined ? undefined : new AuditFile({ path: a.file, maxBytes: a.fileMaxBytes, keep: a.fileKeep, queueSize: a.queueSize }, metrics, logger),
      webhook:
        a.webhookUrl === undefined
          ? undefined
          : new Webhook(
              { url: a.webhookUrl, token: readSecret(a.webhookToken, a.webhookTokenFile), timeoutMs: a.webhookTimeoutMs, retries: a.webhookRetries, queueSize: a.queueSize, ca },
              metrics,
              logger,
            ),
    },
    lifecycle: { draining: false, closing: false },
  }
}

/** The ledger the settings describe: this process's memory, or the shared Redis store. */
export function createLedger(config: Config, ca = trustedCas(config)): LedgerStore {
  const l = config.ledger
  if (l.store === 'memory') return new MemoryLedgerStore(l.maxRecords)
  return new RedisLedgerStore({
    url: l.redisUrl,
    sentinels: l.redisSentinels,
    sentinelMaster: l.redisSentinelMaster,
    password: readSecret(l.redisPassword, l.redisPasswordFile),
    keyPrefix: l.redisKeyPrefix,
    ttlSeconds: l.ttlSeconds,
    maxTagsPerRepository: l.maxTagsPerRepository,
    commandTimeoutMs: l.redisTimeoutMs,
    ca,
  })
}

/** The store behind its bounds, its state in the metrics and its transitions in the log. */
function guardedLedger(store: LedgerStore, config: Config, metrics: Metrics, logger: Logger): GuardedLedger {
  metrics.ledgerUp.set(1)
  return new GuardedLedger(store, {
    timeoutMs: config.ledger.redisTimeoutMs,
    maxPending: config.ledger.maxPending,
    onError: (operation) => metrics.ledgerErrors.inc({ operation }),
    onState: (state) => {
      metrics.ledgerUp.set(state.up ? 1 : 0)
      metrics.ledgerPending.set(state.pending)
    },
    onLost: () => metrics.ledgerRecordsLost.inc(),
    warn: (message, facts) => logger.warn({ event: 'ledger.state', ...facts }, message),
  })
}

export async function closeServices(services: Services): Promise<void> {
  // Audit records already queued are delivered (or fail and are counted) before exit.
  await Promise.allSettled([services.audit.file?.drained(), services.audit.webhook?.drained()])
  await Promise.allSettled([services.client.close(), services.passthrough.close(), services.passthroughReads.close(), services.ledger.close()])
}
