import type { Digest } from '../oci/digest.js'
import type { Platform } from '../oci/platform.js'

// A finding explained: its cause and the facts that prove it. Structured all the way to the
// wire, where `message` holds the sentence and `detail` these facts.

/**
 * Every cause, most important first (the order problems are reported in):
 * - stale: child missing; the ledger knew it as <name>:<tag>, and that tag now points elsewhere.
 * - stale-present: child present, but the list's own tag for it has since been re-pushed with another build.
 * - wrong-repository: child missing here, present in another repository the client can read.
 * - deleted: child missing; the ledger saw it in this repository before.
 * - never-pushed: child missing, and seen nowhere.
 * - unreadable-elsewhere: child missing, not found where the client may read, and the registry
 *   refused the client's credentials in repositories where it may be (token auth's scoped tokens).
 * - child-missing: child missing, not explained (more problems in one push than are explained).
 * - blob-missing: child present, one of its blobs missing (or a blob entry of the index missing).
 * - platform-mismatch: an entry's platform is not the one its image's config says.
 * - platform-missing: a platform validation.requiredPlatforms asks for has no entry.
 * - tag-moved: child present, its tag re-pushed since, and nothing says whether the list owns that tag.
 * - released-copy: child present, its tag (the list's own) re-pushed since, but the list is a copy
 *   of one already released as some tag's value (a rollback, a promotion, a restore).
 * - duplicate-entry: two entries nothing tells apart; clients take the first.
 * - denied: the client's credentials do not reach something; the registry must answer, not us.
 * - ledger-unavailable: the push ledger could not be read (or a tag's history has a gap): the
 *   stale check could not run (validation.onLedgerFailure says what then).
 */
export const CAUSES = [
  'stale',
  'stale-present',
  'wrong-repository',
  'deleted',
  'never-pushed',
  'unreadable-elsewhere',
  'child-missing',
  'blob-missing',
  'platform-mismatch',
  'platform-missing',
  'size-mismatch',
  'media-type-mismatch',
  'child-unreadable',
  'too-deep',
  'too-many',
  'tag-moved',
  'released-copy',
  'duplicate-entry',
  'denied',
  'lookup-failed',
  'timeout',
  'ledger-unavailable',
] as const

export type Cause = (typeof CAUSES)[number]

export type ObjectKind = 'child manifest' | 'config' | 'layer' | 'entry'

export interface Problem {
  readonly cause: Cause
  readonly object?: ObjectKind
  readonly digest?: Digest
  /** Platforms concerned (a shared layer can belong to several children). */
  readonly platforms?: readonly (Platform | undefined)[]
  /** For blobs: the child manifests they belong to. */
  readonly parents?: readonly Digest[]
  /** For blobs: the tag the (first) parent child was pushed as, when the ledger knows. */
  readonly parentTag?: string
  readonly layerIndex?: number
  /** stale / stale-present / tag-moved / deleted: the tag the child was pushed as. */
  readonly tag?: string
  readonly pushedAt?: number
  /** stale / stale-present / tag-moved: where that tag points now. */
  readonly now?: Digest
  readonly nowAt?: number
  readonly nowBy?: string
  /** wrong-repository: where the child is. */
  readonly foundIn?: string
  /** never-pushed / unreadable-elsewhere: repositories looked in. */
  readonly checked?: readonly string[]
  /** unreadable-elsewhere: candidate repositories the client's credentials were refused in. */
  readonly unreadable?: readonly string[]
  /** released-copy: a tag whose value this very list was (or is), other than a re-send onto itself. */
  readonly releasedAs?: string
  readonly expected?: string | number
  readonly actual?: string | number
  /** duplicate-entry: the other entry. */
  readonly otherDigest?: Digest
  readonly limit?: number
  readonly reason?: string
  /** platform-mismatch: what the image's config says (`platforms` holds what the entry says). */
  readonly imagePlatform?: Platform
  /** platform-missing: the required platforms without an entry, and those the list has. */
  readonly missingPlatforms?: readonly string[]
  readonly presentPlatforms?: readonly string[]
}

export const LOOKUP_CAUSES: ReadonlySet<Cause> = new Set<Cause>(['lookup-failed', 'timeout'])

/** Causes that only warn: the list is forwarded and the decision record says why. */
export const WARNING_CAUSES: ReadonlySet<Cause> = new Set<Cause>(['tag-moved', 'released-copy', 'duplicate-entry'])

/** Causes that make a list broken whatever the policy says: all but these. */
export const HARD_CAUSES: ReadonlySet<Cause> = new Set<Cause>(
  CAUSES.filter((c) => c !== 'stale-present' && c !== 'platform-mismatch' && c !== 'denied' && c !== 'ledger-unavailable' && !LOOKUP_CAUSES.has(c) && !WARNING_CAUSES.has(c)),
)
