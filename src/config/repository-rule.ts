import picomatch from 'picomatch'
import { type FieldType, platformSpec } from './field-type.js'

// Per-repository overrides of the validation policy, matched by glob on the repository
// name (`team/*` is one level, `team/**` any depth). First match wins.

export interface RepositoryRule {
  readonly match: string
  readonly mode?: 'enforce' | 'warn' | 'off'
  readonly staleChild?: 'reject' | 'warn'
  readonly onLookupFailure?: 'reject' | 'forward'
  readonly repair?: 'off' | 'copy-children'
  readonly platformMismatch?: 'reject' | 'warn'
  /** Replaces validation.requiredPlatforms for the repositories it matches ([] requires none). */
  readonly requiredPlatforms?: readonly string[]
}

const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  mode: ['enforce', 'warn', 'off'],
  staleChild: ['reject', 'warn'],
  onLookupFailure: ['reject', 'forward'],
  repair: ['off', 'copy-children'],
  platformMismatch: ['reject', 'warn'],
}
/** Rule keys whose value is a list, read as the global setting of the same name reads it. */
const LISTS: Readonly<Record<string, FieldType<readonly string[]>>> = {
  requiredPlatforms: platformSpec,
}

export const rulesType: FieldType<readonly RepositoryRule[]> = {
  describe: 'list of {match, mode?, staleChild?, onLookupFailure?, repair?, platformMismatch?, requiredPlatforms?}',
  jsonSchema: {
    type: 'array',
    items: {
      type: 'object',
      required: ['match'],
      additionalProperties: false,
      properties: { match: { type: 'string', minLength: 1 }, ...Object.fromEntries(Object.entries(ALLOWED).map(([k, v]) => [k, { enum: [...v] }])),
        ...Object.fromEntries(Object.entries(LISTS).map(([k, type]) => [k, type.jsonSchema ?? { type: 'array', items: { type: 'string' } }])),
      },
    },
  },
  parse(raw) {
    if (!Array.isArray(raw)) return { expected: 'a list of rules' }
    const rules: RepositoryRule[] = []
    for (const [i, entry] of raw.entries()) {
      if (typeof entry !== 'object' || entry === null) return { expected: `rule ${i} to be an object` }
      const r = entry as Record<string, unknown>
      if (typeof r['match'] !== 'string' || r['match'] === '') return { expected: `rule ${i} to have a "match" glob` }
      const rule: Record<string, unknown> = { ...r }
      for (const key of Object.keys(r)) {
        if (key === 'match') continue
        const list = LISTS[key]
        if (list !== undefined) {
          const parsed = list.parse(r[key])
          if ('expected' in parsed) return { expected: `rule ${i} ${key} to be ${parsed.expected}` }
          rule[key] = parsed.value
          continue
        }
        const allowed = ALLOWED[key]
        if (allowed === undefined) return { expected: `rule ${i} to have only match, ${[...Object.keys(ALLOWED), ...Object.keys(LISTS)].join(', ')} (got "${key}")` }
        if (!allowed.includes(r[key] as string)) return { expected: `rule ${i} ${key} to be one of ${allowed.join(', ')}` }
      }
      rules.push(rule as unknown as RepositoryRule)
    }
    return { value: rules }
  },
}

/** Compiles the rules once; returns the first rule matching a repository, if any. */
export function ruleMatcher(rules: readonly RepositoryRule[]): (repository: string) => RepositoryRule | undefined {
  const compiled = rules.map((rule) => ({ rule, test: picomatch(rule.match) }))
  return (repository) => compiled.find((c) => c.test(repository))?.rule
}
