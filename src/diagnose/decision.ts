import { type ErrorCodeName, RegistryError, type WireError } from '../oci/error-code.js'
import { formatPlatform } from '../oci/platform.js'
import { type MessageContext, messageFor, moreProblemsMessage } from './message.js'
import { type Cause, HARD_CAUSES, LOOKUP_CAUSES, type Problem } from './problem.js'

// What to do with a push, given its problems and the policy: forward it, reject it with one
// error per problem, or answer 503 because it could not be checked.

export interface Policy {
  readonly mode: 'enforce' | 'warn'
  readonly staleChild: 'reject' | 'warn'
  /** An entry whose platform is not its image's: refused unless 'warn' (mirrors of mislabelled upstreams). */
  readonly platformMismatch: 'reject' | 'warn'
  readonly onLookupFailure: 'reject' | 'forward'
  /** When the stale check could not run (the ledger unreadable, or a gap in a tag's history). */
  readonly onLedgerFailure: 'reject' | 'forward'
  readonly retryAfterSeconds: number
}

export type Verdict = 'accepted' | 'rejected' | 'warned' | 'repaired' | 'unverified' | 'deferred'

export interface Decision {
  readonly verdict: Verdict
  /** Forward the original bytes upstream, or answer with `error`. */
  readonly forward: boolean
  readonly error: RegistryError | undefined
  /** The most important problems, at most MAX_PROBLEMS of them. */
  readonly problems: readonly Problem[]
  /** How many more there were: an answer, a record and a log line stay small whatever is pushed. */
  readonly omitted: number
}

/** Problems kept per answer and per record; the rest are counted. */
export const MAX_PROBLEMS = 20

const CODE: Readonly<Record<Cause, ErrorCodeName>> = {
  stale: 'MANIFEST_BLOB_UNKNOWN',
  'stale-present': 'MANIFEST_BLOB_UNKNOWN',
  'wrong-repository': 'MANIFEST_BLOB_UNKNOWN',
  deleted: 'MANIFEST_BLOB_UNKNOWN',
  'never-pushed': 'MANIFEST_BLOB_UNKNOWN',
  'unreadable-elsewhere': 'MANIFEST_BLOB_UNKNOWN',
  'child-missing': 'MANIFEST_BLOB_UNKNOWN',
  'blob-missing': 'MANIFEST_BLOB_UNKNOWN',
  'platform-mismatch': 'MANIFEST_INVALID',
  'platform-missing': 'MANIFEST_INVALID',
  'size-mismatch': 'MANIFEST_INVALID',
  'media-type-mismatch': 'MANIFEST_INVALID',
  'child-unreadable': 'MANIFEST_INVALID',
  'too-deep': 'MANIFEST_INVALID',
  'too-many': 'MANIFEST_INVALID',
  'tag-moved': 'MANIFEST_BLOB_UNKNOWN',
  'released-copy': 'MANIFEST_BLOB_UNKNOWN',
  'duplicate-entry': 'MANIFEST_INVALID',
  denied: 'DENIED',
  'lookup-failed': 'UNAVAILABLE',
  timeout: 'UNAVAILABLE',
  'ledger-unavailable': 'UNAVAILABLE',
}

export function decide(found: readonly Problem[], policy: Policy, ctx: MessageContext): Decision {
  // Problems arrive most important first: the first MAX_PROBLEMS say what matters.
  const problems = found.slice(0, MAX_PROBLEMS)
  const omitted = found.length - problems.length
  // The registry itself must challenge a client whose credentials do not reach the content:
  // forwarding untouched gives it that chance and tells the client nothing from us.
  if (found.some((p) => p.cause === 'denied')) return { verdict: 'deferred', forward: true, error: undefined, problems, omitted }

  const blocking = found.filter((p) => isBlocking(p, policy))
  if (blocking.length > 0) {
    if (policy.mode === 'warn') return { verdict: 'warned', forward: true, error: undefined, problems, omitted }
    const shown = blocking.slice(0, MAX_PROBLEMS).map((p) => wireError(p, ctx))
    const more = blocking.length - shown.length
    if (more > 0) shown.push({ code: shown[0]!.code, message: moreProblemsMessage(more, ctx), detail: { omitted: more, requestId: ctx.requestId } })
    return { verdict: 'rejected', forward: false, error: new RegistryError(400, shown), problems, omitted }
  }
  // The one place a fault of the push ledger decides a push: fail closed (503) unless the
  // policy says to forward; forwarded, the push is `warned`, never silently accepted.
  const failures = found.filter((p) => (LOOKUP_CAUSES.has(p.cause) && policy.onLookupFailure === 'reject') || (p.cause === 'ledger-unavailable' && policy.onLedgerFailure === 'reject'))
  if (failures.length > 0) {
    const error = new RegistryError(503, failures.slice(0, 1).map((p) => wireError(p, ctx)), { 'retry-after': String(policy.retryAfterSeconds) })
    return { verdict: 'unverified', forward: false, error, problems, omitted }
  }
  if (found.some((p) => LOOKUP_CAUSES.has(p.cause))) return { verdict: 'unverified', forward: true, error: undefined, problems, omitted }
  if (found.length > 0) return { verdict: 'warned', forward: true, error: undefined, problems, omitted }
  return { verdict: 'accepted', forward: true, error: undefined, problems, omitted }
}

/** Whether a problem stops the push under this policy (in enforce mode). */
export function isBlocking(p: Problem, policy: Pick<Policy, 'staleChild' | 'platformMismatch'>): boolean {
  return HARD_CAUSES.has(p.cause) || (p.cause === 'stale-present' && policy.staleChild === 'reject') || (p.cause === 'platform-mismatch' && policy.platformMismatch !== 'warn')
}

/** One wire error: the sentence in `message`, the facts in `detail` for tools and logs. */
export function wireError(p: Problem, ctx: MessageContext): WireError {
  return { code: CODE[p.cause], message: messageFor(p, ctx), detail: detailOf(p, ctx) }
}

/** Digests listed per fact in `detail`; the rest are counted. */
const DETAIL_LIST_LIMIT = 20

export function detailOf(p: Problem, ctx: Pick<MessageContext, 'repository' | 'reference' | 'requestId'>): Record<string, unknown> {
  const { platforms, parents, imagePlatform, ...facts } = p
  const parentList = parents === undefined ? undefined : [...new Set(parents)]
  return {
    ...facts,
    ...(platforms === undefined ? {} : { platforms: [...new Set(platforms.map((x) => formatPlatform(x)))].slice(0, DETAIL_LIST_LIMIT) }),
    ...(parentList === undefined ? {} : { parents: parentList.slice(0, DETAIL_LIST_LIMIT) }),
    ...(imagePlatform === undefined ? {} : { imagePlatform: formatPlatform(imagePlatform) }),
    ...(parentList !== undefined && parentList.length > DETAIL_LIST_LIMIT ? { parentsOmitted: parentList.length - DETAIL_LIST_LIMIT } : {}),
    ...(p.pushedAt === undefined ? {} : { pushedAt: new Date(p.pushedAt).toISOString() }),
    ...(p.nowAt === undefined ? {} : { nowAt: new Date(p.nowAt).toISOString() }),
    repository: ctx.repository,
    reference: ctx.reference,
    requestId: ctx.requestId,
  }
}
