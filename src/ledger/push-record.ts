import type { Digest } from '../oci/digest.js'

// One manifest push seen by the proxy (or reported by the registry's notifications).

export interface PushRecord {
  readonly repository: string
  /** The tag pushed, or undefined for a push by digest. */
  readonly tag: string | undefined
  readonly digest: Digest
  readonly mediaType: string | undefined
  /** Epoch milliseconds. */
  readonly at: number
  /** Basic user, or the bearer token's claimed subject; never a credential. */
  readonly identity: string | undefined
  /** 'gap': no push, a marker that records of this tag were lost (guarded-ledger.ts). */
  readonly source: 'proxy' | 'registry-event' | 'gap'
}

/** Where push records live. Memory by default; a shared store serves many replicas. */
export interface LedgerStore {
  record(record: PushRecord): Promise<void>
  /** Every recorded push of this digest, in any repository, newest first. */
  pushesOf(digest: Digest): Promise<readonly PushRecord[]>
  /** Recorded pushes of repository:tag, newest first. */
  tagHistory(repository: string, tag: string): Promise<readonly PushRecord[]>
  /** Resolves when the store answers (a shared store is asked; memory always answers). */
  ping?(): Promise<void>
  close(): Promise<void>
}

/** Records kept per digest and per tag: enough history to explain, bounded against floods. */
export const HISTORY_PER_KEY = 32
