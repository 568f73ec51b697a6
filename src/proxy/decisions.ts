import type { FastifyRequest } from 'fastify'
import type { Verdict } from '../diagnose/decision.js'
import type { DecisionRecord } from './contracts.js'
import { decisionEvent, logDecision } from './decision-log.js'
import type { Services } from './services.js'

// Where a list push decision goes: the log (always), the metrics, the ring of recent
// decisions for operators, and the audit sinks for the decisions configured there (and every
// decision the push ledger's faults made).

/** What recording a decision needs of the proxy's services. */
export type DecisionSinks = Pick<Services, 'metrics' | 'decisions' | 'audit'> & { readonly audited: readonly string[] }

export function decisionRecorder(sinks: DecisionSinks): (request: FastifyRequest, record: DecisionRecord) => void {
  const { metrics, decisions, audit } = sinks
  const audited: ReadonlySet<string> = new Set(sinks.audited)
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
    // A push whose stale check could not run is audited whatever audit.include says: it was
    // refused for the ledger's sake (503) or stored unchecked (warned).
    if (audited.has(verdict) || record.decision.problems.some((p) => p.cause === 'ledger-unavailable')) {
      audit.file?.append(event)
      audit.webhook?.send(event.event, `${event.repository}:${event.reference}`, event)
    }
  }
}
