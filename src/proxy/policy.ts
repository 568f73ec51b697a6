import { ruleMatcher } from '../config/repository-rule.js'
import type { Config, Mode, RepairPolicy } from '../config/schema.js'
import type { Policy } from '../diagnose/decision.js'

// The validation policy for one repository: the defaults, overridden by the first matching
// per-repository rule.

export type RepositoryPolicy = Omit<Policy, 'mode'> & { readonly mode: Mode; readonly repair: RepairPolicy; readonly requiredPlatforms: readonly string[] }

export function policyResolver(config: Config): (repository: string) => RepositoryPolicy {
  const match = ruleMatcher(config.validation.rules)
  const v = config.validation
  return (repository) => {
    const rule = match(repository)
    return {
      mode: rule?.mode ?? v.mode,
      staleChild: rule?.staleChild ?? v.staleChild,
      onLookupFailure: rule?.onLookupFailure ?? v.onLookupFailure,
      onLedgerFailure: v.onLedgerFailure,
      repair: rule?.repair ?? v.repair,
      platformMismatch: rule?.platformMismatch ?? v.platformMismatch,
      requiredPlatforms: rule?.requiredPlatforms ?? v.requiredPlatforms,
      retryAfterSeconds: v.retryAfterSeconds,
    }
  }
}
