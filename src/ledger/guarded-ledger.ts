import type { Digest } from '../oci/digest.js'
import type { LedgerStore, PushRecord } from './push-record.js'

// The ledger as the proxy uses it: a store (memory or Redis) behind bounds that make its
// faults visible instead of silent.
// - A write waits at most `timeoutMs`. One that cannot be made is kept here (at most
//   `maxPending`) and made when the store answers again; reads merge the kept records in,
//   so this replica never forgets a push it saw.
// - A kept record that has to be dropped leaves a gap marker for its tag (a record with
//   source 'gap', written with the rest once the store is back): a tag whose history has a
//   gap is unknown to the stale rule, never clean. Its reads fail (LedgerGapError) until a
//   push of that tag newer than the gap is recorded.
// - A failed read or write marks the ledger down; while it is down reads fail at once (the
//   stale check cannot run: list pushes get 503, or a warning, as the policy says) and a
//   probe asks the store every second; when it answers, the kept records are written.

/** Why the stale check could not use the ledger. */
export class LedgerUnavailableError extends Error {
  override readonly name: string = 'LedgerUnavailableError'
}

/** A tag whose history lost records: unknown to the stale rule. */
export class LedgerGapError extends LedgerUnavailableError {
  override readonly name: string = 'LedgerGapError'
}

export interface LedgerState {
  readonly up: boolean
  readonly pending: number
  /** Why the store is down, while it is. */
  readonly reason: string | undefined
}

export interface GuardedLedgerOptions {
  /** Longest a read or write may take (ledger.redisTimeoutMs). */
  readonly timeoutMs: number
  /** Records kept while the store is down; past it the oldest give way to gap markers. */
  readonly maxPending: number
  readonly probeUpMs?: number
  readonly probeDownMs?: number
  readonly onError?: (operation: 'record' | 'read') => void
  readonly onState?: (state: LedgerState) => void
  /** A record could not be kept and is lost (its tag, if any, got a gap marker). */
  readonly onLost?: (record: PushRecord) => void
  readonly warn?: (message: string, facts: Record<string, unknown>) => void
}

/** The digest gap markers carry: they are no push of anything. */
const GAP_DIGEST = `sha256:${'0'.repeat(64)}` as Digest

export class GuardedLedger implements LedgerStore {
  readonly #store: LedgerStore
  readonly #o: GuardedLedgerOptions
  /** Records not yet written, by identity (a repeat of one is one). */
  readonly #pending = new Map<string, PushRecord>()
  /** Gap markers not yet written, one per tag (bounded the same way). */
  readonly #gaps = new Map<string, PushRecord>()
  #up = true
  #reason: string | undefined
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined
  #closed = false

  constructor(store: LedgerStore, options: GuardedLedgerOptions) {
    this.#store = store
    this.#o = options
    this.#schedule()
  }

  get state(): LedgerState {
    return { up: this.#up, pending: this.#pending.size + this.#gaps.size, reason: this.#reason }
  }

  /**
   * Writes a record within the bound, or keeps it to write later: never rejects. 'kept' says
   * the store does not have it yet (this replica does, and merges it into its reads).
   */
  async record(record: PushRecord): Promise<void> {
    await this.write(record)
  }

  async write(record: PushRecord): Promise<'written' | 'kept'> {
    // Written straight away even with older records still kept: histories are ordered by
    // the time of each push, not by when the store learned of it.
    if (this.#up) {
      try {
        await this.#bounded(this.#store.record(record))
        return 'written'
      } catch (err) {
        this.#down('record', err)
      }
    }
    this.#keep(record)
    return 'kept'
  }

  /** Writes a record within the bound or throws: for callers that can ask to be sent it again. */
  async recordNow(record: PushRecord): Promise<void> {
    if (!this.#up) throw new LedgerUnavailableError(`the push ledger is unavailable (${this.#reason ?? 'unknown'})`)
    try {
      await this.#bounded(this.#store.record(record))
    } catch (err) {
      this.#down('record', err)
      throw new LedgerUnavailableError(`the push ledger is unavailable (${this.#reason ?? 'unknown'})`)
    }
  }

  async pushesOf(digest: Digest): Promise<readonly PushRecord[]> {
    const stored = await this.#read(() => this.#store.pushesOf(digest))
    return merged(
      stored.filter((r) => r.source !== 'gap'),
      [...this.#pending.values()].filter((r) => r.digest === digest),
    )
  }

  async tagHistory(repository: string, tag: string): Promise<readonly PushRecord[]> {
    const stored = await this.#read(() => this.#store.tagHistory(repository, tag))
    const all = merged(
      stored,
      [...this.#pending.values(), ...this.#gaps.values()].filter((r) => r.repository === repository && r.tag === tag),
    )
    const newest = all[0]
    if (newest?.source === 'gap') {
      throw new LedgerGapError(`the push ledger lost records of ${repository}:${tag} at ${new Date(newest.at).toISOString()} (Redis was unavailable longer than ${this.#o.maxPending} pushes); its history is unknown until it is pushed again`)
    }
    return all.filter((r) => r.source !== 'gap')
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    // A last chance for what is kept; a store still down loses it (the log says how much).
    if (this.state.pending > 0 && this.#up) await this.#flush().catch(() => {})
    if (this.state.pending > 0) this.#o.warn?.('push records not written to the ledger at exit are lost', { records: this.state.pending })
    await this.#store.close()
  }

  async #read<T>(read: () => Promise<T>): Promise<T> {
    if (!this.#up) throw new LedgerUnavailableError(`the push ledger is unavailable (${this.#reason ?? 'unknown'})`)
    try {
      return await this.#bounded(read())
    } catch (err) {
      this.#down('read', err)
      throw new LedgerUnavailableError(`the push ledger is unavailable (${this.#reason ?? 'unknown'})`)
    }
  }

  #bounded<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#o.timeoutMs} ms`)), this.#o.timeoutMs)
    })
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
  }

  #keep(record: PushRecord): void {
    this.#pending.set(keyOf(record), record)
    while (this.#pending.size > this.#o.maxPending) {
      const [oldestKey, oldest] = this.#pending.entries().next().value as [string, PushRecord]
      this.#pending.delete(oldestKey)
      this.#o.onLost?.(oldest)
      if (oldest.tag === undefined) continue
      // The tag keeps a marker in its place: its history is known to be incomplete.
      const gap: PushRecord = { repository: oldest.repository, tag: oldest.tag, digest: GAP_DIGEST, mediaType: undefined, at: Date.now(), identity: undefined, source: 'gap' }
      const key = `${gap.repository}\n${gap.tag}`
      this.#gaps.delete(key)
      this.#gaps.set(key, gap)
      if (this.#gaps.size > this.#o.maxPending) {
        const [firstKey, first] = this.#gaps.entries().next().value as [string, PushRecord]
        this.#gaps.delete(firstKey)
        this.#o.warn?.('a gap marker of the push ledger was dropped: that tag may be judged on an incomplete history', { repository: first.repository, tag: first.tag })
      }
    }
    this.#changed()
  }

  #down(operation: 'record' | 'read', err: unknown): void {
    this.#o.onError?.(operation)
    const reason = (err as Error).message || String(err)
    if (this.#up) this.#o.warn?.('the push ledger is unavailable: list pushes cannot be checked for stale children until it answers', { reason })
    this.#up = false
    this.#reason = reason
    this.#changed()
    this.#schedule()
  }

  #changed(): void {
    this.#o.onState?.(this.state)
  }

  #schedule(): void {
    if (this.#closed) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.#probe(), this.#up ? (this.#o.probeUpMs ?? 5_000) : (this.#o.probeDownMs ?? 1_000))
    this.#timer.unref()
  }

  /** Asks the store whether it answers; when it does again, writes what was kept. */
  async #probe(): Promise<void> {
    try {
      await this.#bounded(this.#store.ping?.() ?? Promise.resolve())
      const wasDown = !this.#up
      this.#up = true
      this.#reason = undefined
      if (this.#pending.size + this.#gaps.size > 0) await this.#flush()
      if (wasDown && this.#up) this.#o.warn?.('the push ledger answers again', {})
      this.#changed()
    } catch (err) {
      if (this.#up) this.#down('read', err)
      else this.#reason = (err as Error).message || String(err)
    }
    this.#schedule()
  }

  /** Writes the kept gap markers and records, oldest first; stops (and marks the store down) at the first failure. */
  #flush(): Promise<void> {
    this.#flushing ??= (async () => {
      try {
        for (const kept of [this.#gaps, this.#pending]) {
          for (const [key, record] of [...kept]) {
            await this.#bounded(this.#store.record(record))
            kept.delete(key)
          }
        }
      } catch (err) {
        this.#down('record', err)
      } finally {
        this.#flushing = undefined
        this.#changed()
      }
    })()
    return this.#flushing
  }
}

function keyOf(r: PushRecord): string {
  return `${r.source}\n${r.repository}\n${r.tag ?? ''}\n${r.digest}\n${r.source === 'gap' ? '' : r.at}`
}

/** Stored and kept records, newest first, a record in both counted once. */
function merged(stored: readonly PushRecord[], kept: readonly PushRecord[]): PushRecord[] {
  if (kept.length === 0) return [...stored]
  const seen = new Set(stored.map(keyOf))
  return [...stored, ...kept.filter((r) => !seen.has(keyOf(r)))].sort((a, b) => b.at - a.at)
}
