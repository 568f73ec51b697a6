import { type ErrorCodeName, RegistryError, type WireError } from '../oci/error-code.js'
import { formatPlatform } from '../oci/platform.js'
import { type MessageContext, messageFor } from './message.js'
import { type Cause, HARD_CAUSES, LOOKUP_CAUSES, type Problem } from './problem.js'

// What to do with a push, given its problems and the policy: forward it, reject it with one
// error per problem, or answer 503 because it could not be checked.

export interface Policy {
  readonly mode: 'enforce' | 'warn'
  readonly staleChild: 'reject' | 'warn'
  readonly onLookupFailure: 'reject' | 'forward'
  readonly retryAfterSeconds: number
}

export type Verdict = 'accepted' | 'rejected' | 'warned' | 'unverified' | 'deferred'

export interface Decision {
  readonly verdict: Verdict
  /** Forward the original bytes upstream, or answer with `error`. */
  readonly forward: boolean
  readonly error: RegistryError | undefined
  readonly problems: readonly Problem[]
}

const CODE: Readonly<Record<Cause, ErrorCodeName>> = {
  stale: 'MANIFEST_BLOB_UNKNOWN',
  'stale-present': 'MANIFEST_BLOB_UNKNOWN',
  'wrong-repository': 'MANIFEST_BLOB_UNKNOWN',
  deleted: 'MANIFEST_BLOB_UNKNOWN',
  'never-pushed': 'MANIFEST_BLOB_UNKNOWN',
  'blob-missing': 'MANIFEST_BLOB_UNKNOWN',
  'size-mismatch': 'MANIFEST_INVALID',
  'media-type-mismatch': 'MANIFEST_INVALID',
  'child-unreadable': 'MANIFEST_INVALID',
  'duplicate-platform': 'MANIFEST_INVALID',
  'too-deep': 'MANIFEST_INVALID',
  'too-many': 'MANIFEST_INVALID',
  denied: 'DENIED',
  'lookup-failed': 'UNAVAILABLE',
  timeout: 'UNAVAILABLE',
}

export function decide(problems: readonly Problem[], policy: Policy, ctx: MessageContext): Decision {
  // The registry itself must challenge a client whose credentials do not reach the content:
  // forwarding untouched gives it that chance and tells the client nothing from us.
  if (problems.some((p) => p.cause === 'denied')) return { verdict: 'deferred', forward: true, error: undefined, problems }

  const blocking = problems.filter((p) => HARD_CAUSES.has(p.cause) || (p.cause === 'stale-present' && policy.staleChild === 'reject'))
  if (blocking.length > 0) {
    if (policy.mode === 'warn') return { verdict: 'warned', forward: true, error: undefined, problems }
    return { verdict: 'rejected', forward: false, error: new RegistryError(400, blocking.map((p) => wireError(p, ctx))), problems }
  }
  const failures = problems.filter((p) => LOOKUP_CAUSES.has(p.cause))
  if (failures.length > 0) {
    if (policy.onLookupFailure === 'forward') return { verdict: 'unverified', forward: true, error: undefined, problems }
    const error = new RegistryError(503, failures.slice(0, 1).map((p) => wireError(p, ctx)), { 'retry-after': String(policy.retryAfterSeconds) })
    return { verdict: 'unverified', forward: false, error, problems }
  }
  if (problems.length > 0) return { verdict: 'warned', forward: true, error: undefined, problems }
  return { verdict: 'accepted', forward: true, error: undefined, problems }
}

/** One wire error: the sentence in `message`, the facts in `detail` for tools and logs. */
export function wireError(p: Problem, ctx: MessageContext): WireError {
  return { code: CODE[p.cause], message: messageFor(p, ctx), detail: detailOf(p, ctx) }
}

export function detailOf(p: Problem, ctx: Pick<MessageContext, 'repository' | 'reference' | 'requestId'>): Record<string, unknown> {
  const { platforms, ...facts } = p
  return {
    ...facts,
    ...(platforms === undefined ? {} : { platforms: platforms.map((x) => formatPlatform(x)) }),
    ...(p.pushedAt === undefined ? {} : { pushedAt: new Date(p.pushedAt).toISOString() }),
    ...(p.nowAt === undefined ? {} : { nowAt: new Date(p.nowAt).toISOString() }),
    repository: ctx.repository,
    reference: ctx.reference,
    requestId: ctx.requestId,
  }
}
