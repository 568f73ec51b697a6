import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

// Prometheus metrics, one registry per proxy instance (tests build several). Label values
// are closed sets (results, causes, kinds, status classes), never repository names: a
// registry has unbounded repositories and a label per repository would grow without end.

export class Metrics {
  readonly registry = new Registry()

  readonly listPushes = new Counter({
    name: 'manifest_guard_list_pushes_total',
    help: 'List and index pushes by decision (accepted, rejected, warned, repaired, unverified, deferred).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  readonly listPushProblems = new Counter({
    name: 'manifest_guard_list_push_problems_total',
    help: 'Problems found in list pushes, by decision and cause.',
    labelNames: ['result', 'cause'] as const,
    registers: [this.registry],
  })

  readonly validationSeconds = new Histogram({
    name: 'manifest_guard_validation_duration_seconds',
    help: 'Time spent validating one list push, lookups and diagnosis included.',
    labelNames: ['result'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
    registers: [this.registry],
  })

  readonly upstreamLookups = new Counter({
    name: 'manifest_guard_upstream_lookups_total',
    help: "The proxy's own requests to the registry, by kind and status (error: no answer).",
    labelNames: ['kind', 'status'] as const,
    registers: [this.registry],
  })

  readonly cacheLookups = new Counter({
    name: 'manifest_guard_cache_lookups_total',
    help: 'Manifest bodies validation took from the cache (hit) or fetched (miss).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  readonly proxiedRequests = new Counter({
    name: 'manifest_guard_proxied_requests_total',
    help: 'Requests answered on the proxy port, by method and status class.',
    labelNames: ['method', 'status_class'] as const,
    registers: [this.registry],
  })

  readonly proxiedBytes = new Counter({
    name: 'manifest_guard_proxied_bytes_total',
    help: 'Bytes through the proxy port, headers included: in (from clients) and out (to clients).',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  })

  readonly auditDeliveries = new Counter({
    name: 'manifest_guard_audit_deliveries_total',
    help: 'Audit records by sink (file, webhook) and outcome (delivered, retried, failed, dropped).',
    labelNames: ['sink', 'outcome'] as const,
    registers: [this.registry],
  })

  readonly ledgerErrors = new Counter({
    name: 'manifest_guard_ledger_errors_total',
    help: 'Ledger store operations that failed or took longer than ledger.redisTimeoutMs (record, read).',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  })

  readonly ledgerUp = new Gauge({
    name: 'manifest_guard_ledger_up',
    help: 'Whether the push ledger answers (1) or not (0): while 0, list pushes cannot be checked for stale children (validation.onLedgerFailure). Probed every few seconds, pushes or not.',
    registers: [this.registry],
  })

  readonly ledgerPending = new Gauge({
    name: 'manifest_guard_ledger_pending_records',
    help: 'Push records kept in memory because the ledger could not be written; written when it answers again (ledger.maxPending).',
    registers: [this.registry],
  })

  readonly ledgerRecordsLost = new Counter({
    name: 'manifest_guard_ledger_records_lost_total',
    help: 'Push records dropped past ledger.maxPending; their tags are marked as having a gap.',
    registers: [this.registry],
  })

  readonly repairs = new Counter({
    name: 'manifest_guard_repairs_total',
    help: 'List pushes mended by validation.repair, by result (copied, failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  readonly registryEvents = new Counter({
    name: 'manifest_guard_registry_events_total',
    help: 'Registry notification events received, by outcome (recorded, ignored, rejected, failed: not recorded, answered 503 for the registry to send again).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'manifest_guard_' })
  }

  /** `2xx`, `4xx`, …: bounded label values. */
  static statusClass(status: number): string {
    return `${Math.floor(status / 100)}xx`
  }
}
