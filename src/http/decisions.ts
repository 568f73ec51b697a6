import type { FastifyRequest } from 'fastify'
import type { Verdict } from '../diagnose/decision.js'
import { type DecisionEvent, decisionEvent, logDecision } from './decision-log.js'
import type { DecisionRecord } from './list-push.js'
import type { Services } from './services.js'

// Where a list push decision goes: the log (always), the metrics, the ring of recent
// decisions for operators, and the audit sinks for the decisions configured there.

/** Bytes the ring may hold in all: a flood of large records cannot grow the heap past it. */
export const DECISION_RING_MAX_BYTES = 16 << 20

/** The most recent decisions, newest first, bounded in count and in bytes. */
export class DecisionRing {
  readonly #items: { event: DecisionEvent; bytes: number }[] = []
  readonly #max: number
  readonly #maxBytes: number
  #bytes = 0

  constructor(max: number, maxBytes = DECISION_RING_MAX_BYTES) {
    this.#max = max
    this.#maxBytes = maxBytes
  }

  add(event: DecisionEvent): void {
    if (this.#max === 0) return
    // UTF-16 length of the JSON form: close enough to what the record holds on the heap.
    const bytes = 2 * JSON.stringify(event).length
    this.#items.unshift({ event, bytes })
    this.#bytes += bytes
    while (this.#items.length > this.#max || (this.#bytes > this.#maxBytes && this.#items.length > 1)) {
      this.#bytes -= this.#items.pop()!.bytes
    }
  }

  /** Bytes held now (for tests and the metrics). */
  get bytes(): number {
    return this.#bytes
  }

  list(filter: { repository?: string; result?: string; limit?: number }): DecisionEvent[] {
    const out: DecisionEvent[] = []
    for (const { event: e } of this.#items) {
      if (filter.repository !== undefined && e.repository !== filter.repository) continue
      if (filter.result !== undefined && e.event !== `push.${filter.result}`) continue
      out.push(e)
      if (out.length >= (filter.limit ?? 100)) break
    }
    return out
  }
}

export function decisionRecorder(services: Services): (request: FastifyRequest, record: DecisionRecord) => void {
  const { metrics, decisions, audit } = services
  const audited = new Set(services.config.audit.include)
  return (request, record) => {
    const event = decisionEvent(request, record)
    logDecision(request, event)
    const verdict: Verdict = record.decision.verdict
    metrics.listPushes.inc({ result: verdict })
    for (const p of record.decision.problems) metrics.listPushProblems.inc({ result: verdict, cause: p.cause })
    metrics.validationSeconds.observe({ result: verdict }, record.latencyMs / 1000)
    metrics.cacheLookups.inc({ result: 'hit' }, record.stats.cacheHits)
    metrics.cacheLookups.inc({ result: 'miss' }, record.stats.cacheMisses)
    decisions.add(event)
    if (audited.has(verdict)) {
      audit.file?.append(event)
      audit.webhook?.send(event.event, `${event.repository}:${event.reference}`, event)
    }
  }
}
