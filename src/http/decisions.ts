import type { FastifyRequest } from 'fastify'
import type { Verdict } from '../diagnose/decision.js'
import { type DecisionEvent, decisionEvent, logDecision } from './decision-log.js'
import type { DecisionRecord } from './list-push.js'
import type { Services } from './services.js'

// Where a list push decision goes: the log (always), the metrics, the ring of recent
// decisions for operators, and the audit sinks for the decisions configured there.

/** The most recent decisions, newest first, bounded. */
export class DecisionRing {
  readonly #items: DecisionEvent[] = []
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  add(event: DecisionEvent): void {
    if (this.#max === 0) return
    this.#items.unshift(event)
    if (this.#items.length > this.#max) this.#items.length = this.#max
  }

  list(filter: { repository?: string; result?: string; limit?: number }): DecisionEvent[] {
    const out: DecisionEvent[] = []
    for (const e of this.#items) {
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
