// The most recent list push decisions, kept in memory for the person on call (the admin API
// and page), beside the audit sinks that keep them for good. Bounded in count and in bytes,
// so a flood of large records cannot grow the heap.

/** Bytes the ring may hold in all: a flood of large records cannot grow the heap past it. */
export const DECISION_RING_MAX_BYTES = 16 << 20

/** What the ring needs of a record: where it was pushed and what came of it (`push.<result>`). */
export interface RingRecord {
  readonly repository: string
  readonly event: string
}

/** The most recent decisions, newest first, bounded in count and in bytes. */
export class DecisionRing<T extends RingRecord> {
  readonly #items: { event: T; bytes: number }[] = []
  readonly #max: number
  readonly #maxBytes: number
  #bytes = 0

  constructor(max: number, maxBytes = DECISION_RING_MAX_BYTES) {
    this.#max = max
    this.#maxBytes = maxBytes
  }

  add(event: T): void {
    if (this.#max === 0) return
    // UTF-16 length of the JSON form: close enough to what the record holds on the heap.
    const bytes = 2 * JSON.stringify(event).length
    this.#items.unshift({ event, bytes })
    this.#bytes += bytes
    while (this.#items.length > this.#max || (this.#bytes > this.#maxBytes && this.#items.length > 1)) {
      this.#bytes -= this.#items.pop()!.bytes
    }
  }

  /** Bytes held now (for tests and the metrics). */
  get bytes(): number {
    return this.#bytes
  }

  list(filter: { repository?: string; result?: string; limit?: number }): T[] {
    const out: T[] = []
    for (const { event: e } of this.#items) {
      if (filter.repository !== undefined && e.repository !== filter.repository) continue
      if (filter.result !== undefined && e.event !== `push.${filter.result}`) continue
      out.push(e)
      if (out.length >= (filter.limit ?? 100)) break
    }
    return out
  }
}
