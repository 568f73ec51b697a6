import { setMaxListeners } from 'node:events'
import type { Investigation } from '../diagnose/investigate.js'
import { investigate } from '../diagnose/investigate.js'
import type { Prober } from '../diagnose/prober.js'
import type { LedgerStore } from '../ledger/push-record.js'
import type { LookupContext } from '../oci/content-lookup.js'
import type { IndexManifest } from '../oci/manifest.js'
import type { WalkResult } from '../validate/finding.js'
import { limiter } from '../validate/limiter.js'
import { walkIndex, type WalkLimits } from '../validate/walk.js'

// The walk and the diagnosis as one step, shared by list pushes through the proxy and by
// checks of lists already in the registry. Both spend one budget: the diagnosis's lookups
// run under the walk's concurrency and within the same time limit, so a list built to make
// the diagnosis expensive costs no more than one that makes the walk expensive.

export interface ExamineInput {
  readonly repository: string
  readonly index: IndexManifest
  /** The tag the list is pushed (or checked) as; undefined by digest. */
  readonly tag: string | undefined
  readonly source: Prober
  readonly ledger: LedgerStore
  readonly limits: WalkLimits
  readonly candidatePatterns: readonly string[]
  readonly ctx: LookupContext
  /** validation.requiredPlatforms for this repository. */
  readonly requiredPlatforms?: readonly string[]
}

export interface Examination {
  readonly walk: WalkResult
  readonly investigation: Investigation
}

export async function examine(input: ExamineInput): Promise<Examination> {
  const deadline = AbortSignal.timeout(input.limits.timeoutMs)
  const signal = input.ctx.signal === undefined ? deadline : AbortSignal.any([deadline, input.ctx.signal])
  // Every lookup in flight listens on it: as many as the concurrency allows.
  setMaxListeners(input.limits.concurrency + 16, signal)
  const ctx: LookupContext = { ...input.ctx, signal }
  const walk = await walkIndex({ repository: input.repository, index: input.index, source: input.source, limits: input.limits, ctx, requiredPlatforms: input.requiredPlatforms ?? [] })
  const investigation = await investigate({
    repository: input.repository,
    list: { digest: input.index.digest, children: input.index.manifests },
    listTag: input.tag,
    walk,
    ledger: input.ledger,
    prober: throttled(input.source, limiter(input.limits.concurrency)),
    ctx,
    candidatePatterns: input.candidatePatterns,
  })
  return { walk, investigation }
}

/** The prober with at most `limit`'s lookups in flight. */
function throttled(prober: Prober, limit: <T>(task: () => Promise<T>) => Promise<T>): Prober {
  return {
    manifest: (repository, digest, ctx) => limit(() => prober.manifest(repository, digest, ctx)),
    blob: (repository, digest, ctx) => limit(() => prober.blob(repository, digest, ctx)),
    resolveTag: (repository, reference, ctx) => limit(() => prober.resolveTag(repository, reference, ctx)),
    blobBytes: (repository, digest, ctx, maxBytes) => limit(() => prober.blobBytes(repository, digest, ctx, maxBytes)),
  }
}
