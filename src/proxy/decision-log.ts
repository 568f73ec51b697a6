import type { FastifyRequest } from 'fastify'
import { detailOf } from '../diagnose/decision.js'
import type { Verdict } from '../diagnose/decision.js'
import { printable } from '../oci/printable.js'
import { identityOf } from './identity.js'
import type { DecisionEvent, DecisionRecord } from './contracts.js'

// One structured record per list push decision: who, what, how long, and every problem.
// Identity is a name (or a token's claimed subject), never a credential.

export const EVENTS: Readonly<Record<Verdict, string>> = {
  accepted: 'push.accepted',
  rejected: 'push.rejected',
  warned: 'push.warned',
  repaired: 'push.repaired',
  unverified: 'push.unverified',
  deferred: 'push.deferred',
}

export function decisionEvent(request: FastifyRequest, r: DecisionRecord): DecisionEvent {
  const { decision } = r
  const ctx = { repository: r.repository, reference: r.reference, requestId: request.id }
  return {
    event: EVENTS[decision.verdict],
    requestId: request.id,
    identity: identityOf(request.headers.authorization, r.stats.credentialsAccepted || (r.upstreamStatus !== undefined && r.upstreamStatus < 300)),
    clientAddress: request.socket.remoteAddress,
    // Client-supplied: kept short, so a 16 KB header does not ride along in every record, and
    // printable (Node passes bytes 0x80-0x9f of a header through, as C1 controls).
    userAgent: printableOrUndefined(request.headers['user-agent']?.slice(0, 256)),
    repository: r.repository,
    reference: r.reference,
    digest: r.index.digest,
    mediaType: r.index.mediaType,
    action: decision.forward ? 'forwarded' : 'rejected',
    status: decision.error?.status,
    children: r.stats.children,
    blobs: r.stats.blobs,
    upstreamRequests: r.stats.upstreamRequests,
    cacheHits: r.stats.cacheHits,
    time: new Date().toISOString(),
    latencyMs: Math.round(r.latencyMs * 10) / 10,
    ...(r.ledgerError === undefined ? {} : { ledgerError: r.ledgerError }),
    ...(r.upstreamStatus === undefined ? {} : { upstreamStatus: r.upstreamStatus }),
    ...(r.recheck === undefined ? {} : { recheck: r.recheck }),
    problems: decision.problems.map((p) => detailOf(p, ctx)),
    ...(decision.error === undefined ? {} : { messages: decision.error.errors.map((e) => e.message) }),
    ...(decision.omitted === 0 ? {} : { problemsOmitted: decision.omitted }),
    ...(r.repair === undefined
      ? {}
      : {
          repair: {
            children: r.repair.children,
            blobsMounted: r.repair.blobs.filter((b) => b.how === 'mounted').length,
            blobsStreamed: r.repair.blobs.filter((b) => b.how === 'streamed').length,
            bytesStreamed: r.repair.bytes,
            ms: r.repair.ms,
            ...(r.repair.failed === undefined ? {} : { failed: r.repair.failed }),
          },
        }),
  }
}

function printableOrUndefined(text: string | undefined): string | undefined {
  return text === undefined ? undefined : printable(text)
}

export function logDecision(request: FastifyRequest, event: DecisionEvent): void {
  const level = event.event === 'push.accepted' || event.event === 'push.deferred' ? 'info' : 'warn'
  // The log line has pino's own "time": one object, each key once (strict parsers refuse more).
  const { time: _time, ...record } = event
  request.log[level](record, `${event.event} ${event.repository}:${event.reference}`)
}
