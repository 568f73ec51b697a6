import { LRUCache } from 'lru-cache'
import type { Digest } from '../oci/digest.js'
import { HISTORY_PER_KEY, type LedgerStore, type PushRecord } from './push-record.js'

// The default ledger: two LRU indexes over the same records, bounded by record count.

export class MemoryLedgerStore implements LedgerStore {
  readonly #byDigest: LRUCache<string, PushRecord[]>
  readonly #byTag: LRUCache<string, PushRecord[]>

  constructor(maxRecords: number) {
    const options = { maxSize: maxRecords, sizeCalculation: (records: PushRecord[]) => Math.max(1, records.length) }
    this.#byDigest = new LRUCache(options)
    this.#byTag = new LRUCache(options)
  }

  async record(record: PushRecord): Promise<void> {
    prepend(this.#byDigest, record.digest, record)
    if (record.tag !== undefined) prepend(this.#byTag, `${record.repository}:${record.tag}`, record)
  }

  async pushesOf(digest: Digest): Promise<readonly PushRecord[]> {
    return this.#byDigest.get(digest) ?? []
  }

  async tagHistory(repository: string, tag: string): Promise<readonly PushRecord[]> {
    return this.#byTag.get(`${repository}:${tag}`) ?? []
  }

  async close(): Promise<void> {}
}

function prepend(index: LRUCache<string, PushRecord[]>, key: string, record: PushRecord): void {
  const prior = index.get(key) ?? []
  const newest = prior[0]
  // A repeat of the newest record (a registry event for a push the proxy saw) adds nothing.
  if (newest !== undefined && newest.repository === record.repository && newest.tag === record.tag && newest.digest === record.digest) return
  const list = [record, ...prior]
  list.sort((a, b) => b.at - a.at)
  // Re-set so the cache recounts the size of the grown list.
  index.set(key, list.slice(0, HISTORY_PER_KEY))
}
