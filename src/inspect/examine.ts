import type { Investigation } from '../diagnose/investigate.js'
import { investigate } from '../diagnose/investigate.js'
import type { Prober } from '../diagnose/prober.js'
import type { LedgerStore } from '../ledger/push-record.js'
import type { LookupContext } from '../oci/content-lookup.js'
import type { IndexManifest } from '../oci/manifest.js'
import type { WalkResult } from '../validate/finding.js'
import { walkIndex, type WalkLimits } from '../validate/walk.js'

// The walk and the diagnosis as one step, shared by list pushes through the proxy and by
// checks of lists already in the registry.

export interface ExamineInput {
  readonly repository: string
  readonly index: IndexManifest
  readonly source: Prober
  readonly ledger: LedgerStore
  readonly limits: WalkLimits
  readonly candidatePatterns: readonly string[]
  readonly ctx: LookupContext
}

export interface Examination {
  readonly walk: WalkResult
  readonly investigation: Investigation
}

export async function examine(input: ExamineInput): Promise<Examination> {
  const walk = await walkIndex({ repository: input.repository, index: input.index, source: input.source, limits: input.limits, ctx: input.ctx })
  const investigation = await investigate({
    repository: input.repository,
    children: input.index.manifests,
    walk,
    ledger: input.ledger,
    prober: input.source,
    ctx: input.ctx,
    candidatePatterns: input.candidatePatterns,
  })
  return { walk, investigation }
}
