import type { Digest } from '../oci/digest.js'
import { HISTORY_PER_KEY, type LedgerStore, type PushRecord } from './push-record.js'

// The default ledger: this process's memory, bounded by record count, and fair. Records are
// held per repository, and when the bound is reached the repository holding the most gives up
// its oldest record. So pushes into one repository evict that repository's own history first:
// another repository keeps its records as long as it holds no more than any other (its fair
// share, maxRecords / repositories), however many pushes land elsewhere. Every per-key bound
// (a tag's history, a digest's pushes) is per repository too, for the same reason.

interface Repository {
  /** Every record of the repository, oldest first (insertion order). */
  readonly records: Set<PushRecord>
  readonly byTag: Map<string, PushRecord[]>
  readonly byDigest: Map<string, PushRecord[]>
}

export class MemoryLedgerStore implements LedgerStore {
  readonly #max: number
  #size = 0
  readonly #repositories = new Map<string, Repository>()
  /** Repositories that hold a record of a digest. */
  readonly #holders = new Map<string, Set<string>>()
  /** Repositories by record count, to find the largest at once. */
  readonly #bySize = new Map<number, Set<string>>()
  #largest = 0

  constructor(maxRecords: number) {
    this.#max = maxRecords
  }

  async record(record: PushRecord): Promise<void> {
    const repo = this.#repository(record.repository)
    const list = record.tag === undefined ? repo.byDigest.get(record.digest) : repo.byTag.get(record.tag)
    const newest = list?.[0]
    // A repeat of the newest record (a registry event for a push the proxy saw) adds nothing.
    if (newest !== undefined && newest.tag === record.tag && newest.digest === record.digest) return
    this.#resize(record.repository, repo.records.size, repo.records.size + 1)
    repo.records.add(record)
    this.#size++
    if (record.tag !== undefined) insert(repo.byTag, record.tag, record)
    insert(repo.byDigest, record.digest, record)
    let holders = this.#holders.get(record.digest)
    if (holders === undefined) this.#holders.set(record.digest, (holders = new Set()))
    holders.add(record.repository)
    // Histories stay short: the oldest record of an overlong one goes.
    const tagList = record.tag === undefined ? undefined : repo.byTag.get(record.tag)
    if (tagList !== undefined && tagList.length > HISTORY_PER_KEY) this.#remove(tagList.at(-1)!)
    const digestList = repo.byDigest.get(record.digest)
    if (digestList !== undefined && digestList.length > HISTORY_PER_KEY) this.#remove(digestList.at(-1)!)
    while (this.#size > this.#max) {
      const victim = this.#bySize.get(this.#largest)?.values().next().value
      const oldest = victim === undefined ? undefined : this.#repositories.get(victim)?.records.values().next().value
      if (oldest === undefined) break
      this.#remove(oldest)
    }
  }

  async pushesOf(digest: Digest): Promise<readonly PushRecord[]> {
    const out: PushRecord[] = []
    for (const name of this.#holders.get(digest) ?? []) out.push(...(this.#repositories.get(name)?.byDigest.get(digest) ?? []))
    return out.sort((a, b) => b.at - a.at)
  }

  async tagHistory(repository: string, tag: string): Promise<readonly PushRecord[]> {
    return [...(this.#repositories.get(repository)?.byTag.get(tag) ?? [])]
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /** Records held, per repository (tests and the flood bound). */
  sizeOf(repository: string): number {
    return this.#repositories.get(repository)?.records.size ?? 0
  }

  #repository(name: string): Repository {
    let repo = this.#repositories.get(name)
    if (repo === undefined) {
      repo = { records: new Set(), byTag: new Map(), byDigest: new Map() }
      this.#repositories.set(name, repo)
    }
    return repo
  }

  #remove(record: PushRecord): void {
    const repo = this.#repositories.get(record.repository)
    if (repo === undefined || !repo.records.has(record)) return
    this.#resize(record.repository, repo.records.size, repo.records.size - 1)
    repo.records.delete(record)
    this.#size--
    if (record.tag !== undefined) detach(repo.byTag, record.tag, record)
    if (detach(repo.byDigest, record.digest, record)) {
      const holders = this.#holders.get(record.digest)
      holders?.delete(record.repository)
      if (holders?.size === 0) this.#holders.delete(record.digest)
    }
    if (repo.records.size === 0) this.#repositories.delete(record.repository)
  }

  /** Moves a repository between size buckets; sizes change by one, so the largest is found by steps. */
  #resize(name: string, from: number, to: number): void {
    if (from > 0) {
      const bucket = this.#bySize.get(from)
      bucket?.delete(name)
      if (bucket?.size === 0) this.#bySize.delete(from)
    }
    if (to > 0) {
      let bucket = this.#bySize.get(to)
      if (bucket === undefined) this.#bySize.set(to, (bucket = new Set()))
      bucket.add(name)
    }
    if (to > this.#largest) this.#largest = to
    while (this.#largest > 0 && !this.#bySize.has(this.#largest)) this.#largest--
  }
}

/** Adds a record to a key's list, newest first (events can arrive late: ordered by push time). */
function insert(index: Map<string, PushRecord[]>, key: string, record: PushRecord): void {
  const list = index.get(key)
  if (list === undefined) {
    index.set(key, [record])
    return
  }
  const at = list.findIndex((r) => r.at < record.at)
  list.splice(at === -1 ? list.length : at, 0, record)
}

/** Removes a record from a key's list; true when the list is gone. */
function detach(index: Map<string, PushRecord[]>, key: string, record: PushRecord): boolean {
  const list = index.get(key)
  if (list === undefined) return false
  const i = list.indexOf(record)
  if (i !== -1) list.splice(i, 1)
  if (list.length > 0) return false
  index.delete(key)
  return true
}
