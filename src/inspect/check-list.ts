import { randomBytes } from 'node:crypto'
import { decide, wireError } from '../diagnose/decision.js'
import type { Prober } from '../diagnose/prober.js'
import type { Problem } from '../diagnose/problem.js'
import type { LedgerStore } from '../ledger/push-record.js'
import { type LookupContext, newLookupStats } from '../oci/content-lookup.js'
import type { Descriptor } from '../oci/descriptor.js'
import type { WireError } from '../oci/error-code.js'
import type { IndexManifest } from '../oci/manifest.js'
import { describeMediaType } from '../oci/media-type.js'
import type { WalkLimits } from '../validate/walk.js'
import { examine } from './examine.js'

// Checks a list (or image) that is already in the registry with the same walk and diagnosis
// a push gets: for CI pipelines, and for sweeping a registry after GC or retention ran.

export interface CheckInput {
  readonly source: Prober
  readonly ledger: LedgerStore
  readonly repository: string
  /** Tag or digest. */
  readonly reference: string
  readonly limits: WalkLimits
  readonly candidatePatterns: readonly string[]
  readonly ctx: LookupContext
  /** How the registry is addressed in fix commands. */
  readonly registryHost: string
  /**
   * validation.staleChild for this repository after its rules (proxy/policy.ts), as a push is
   * judged: required, so no caller can judge by another setting than the proxy does.
   */
  readonly staleChild: 'reject' | 'warn'
  /** validation.platformMismatch and requiredPlatforms for this repository, likewise. */
  readonly platformMismatch: 'reject' | 'warn'
  readonly requiredPlatforms: readonly string[]
}

/** `warned`: sound, with problems a push would be forwarded with (and logged as push.warned). */
export type CheckStatus = 'sound' | 'warned' | 'broken' | 'unchecked'

export interface CheckResult {
  readonly repository: string
  readonly reference: string
  readonly status: CheckStatus
  readonly digest?: string
  readonly mediaType?: string
  readonly kind?: string
  readonly children: number
  readonly blobs: number
  /** Why it could not be checked (`unchecked`). */
  readonly reason?: string
  readonly problems: readonly Problem[]
  /** What a push would be answered (`broken`), or warned of (`warned`). */
  readonly errors: readonly WireError[]
  /** The push ledger could not be read: stale and deleted children may show as never pushed. */
  readonly ledgerError?: string
  readonly id: string
}

export async function checkList(input: CheckInput): Promise<CheckResult> {
  const id = `check-${randomBytes(4).toString('hex')}`
  const { source, repository, reference } = input
  const stats = newLookupStats()
  const ctx: LookupContext = { ...input.ctx, stats }
  const base = { repository, reference, id, children: 0, blobs: 0, problems: [], errors: [] }

  const resolved = await source.resolveTag(repository, reference, ctx)
  if (resolved.status !== 'found') return { ...base, status: 'unchecked', reason: unreachable(resolved, `${repository}:${reference}`) }
  const digest = resolved.value.digest
  const fetched = await source.manifest(repository, digest, ctx)
  if (fetched.status !== 'found') return { ...base, digest, status: 'unchecked', reason: unreachable(fetched, `${repository}@${digest}`) }
  const manifest = fetched.value.manifest
  if (manifest === undefined || manifest.kind === 'opaque') {
    return { ...base, digest, mediaType: fetched.value.mediaType, status: 'unchecked', reason: `a ${describeMediaType(fetched.value.mediaType)} is not something manifest-guard checks` }
  }
  // An image is checked as the one child of an index, so it gets the same blob checks.
  const index: IndexManifest =
    manifest.kind === 'index'
      ? manifest
      : { ...manifest, kind: 'index', manifests: [{ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.raw.length } satisfies Descriptor] }

  const { walk, investigation } = await examine({
    repository,
    index,
    tag: reference.includes(':') ? undefined : reference,
    source,
    ledger: input.ledger,
    limits: input.limits,
    candidatePatterns: input.candidatePatterns,
    ctx,
    requiredPlatforms: manifest.kind === 'index' ? (input.requiredPlatforms ?? []) : [],
  })
  const messages = { registryHost: input.registryHost, repository, reference, requestId: id, client: 'other' as const, childTags: investigation.childTags }
  const decision = decide(investigation.problems, { mode: 'enforce', staleChild: input.staleChild, platformMismatch: input.platformMismatch, onLookupFailure: 'reject', onLedgerFailure: 'reject', retryAfterSeconds: 0 }, messages)
  const counts = { children: walk.stats.manifestsChecked - (manifest.kind === 'image' ? 1 : 0), blobs: walk.stats.blobsChecked }
  const common = {
    ...base,
    ...counts,
    digest,
    mediaType: manifest.mediaType,
    kind: describeMediaType(manifest.mediaType),
    problems: investigation.problems,
    ...(investigation.ledgerError === undefined ? {} : { ledgerError: investigation.ledgerError }),
  }
  if (decision.verdict === 'accepted') return { ...common, status: 'sound' }
  if (decision.verdict === 'rejected') return { ...common, status: 'broken', errors: decision.error?.errors ?? [] }
  if (decision.verdict === 'warned') return { ...common, status: 'warned', errors: decision.problems.map((p) => wireError(p, messages)) }
  const reason =
    decision.verdict === 'deferred' ? 'the registry refused the credentials for some lookups' : (decision.error?.errors[0]?.message ?? 'lookups failed')
  return { ...common, status: 'unchecked', reason }
}

function unreachable(answer: { status: string; httpStatus?: number; reason?: string }, what: string): string {
  if (answer.status === 'missing') return `${what} does not exist`
  if (answer.status === 'denied') return `the registry refused the credentials (${answer.httpStatus ?? 401}) for ${what}`
  return `${what} could not be read (${answer.reason ?? 'unknown error'})`
}

/** The settings a check is judged by, taken from a repository's policy (proxy/policy.ts). */
export function judgedBy(policy: Pick<CheckInput, 'staleChild' | 'platformMismatch' | 'requiredPlatforms'>): Pick<CheckInput, 'staleChild' | 'platformMismatch' | 'requiredPlatforms'> {
  return { staleChild: policy.staleChild, platformMismatch: policy.platformMismatch, requiredPlatforms: policy.requiredPlatforms }
}
