import { LRUCache } from 'lru-cache'
import type { Digest } from '../oci/digest.js'
import { type Manifest, parseManifest } from '../oci/manifest.js'

// The reverse index of the delete guard: which tagged lists of a repository name which
// digests (their child manifests, nested ones included, and those children's configs and
// layers). Fed by the list pushes the proxy sees. It only says what *may* be needed: a list's
// tag can have moved and the list can be gone, so the delete guard confirms with the registry
// before refusing, and tells the index what it learned. A digest no list here names costs a
// delete nothing but the index lookup. Bounded: the least recently pushed lists are forgotten
// first (their deletes are then let through, as without the guard).

/** What the index knows of one list. */
export interface IndexedList {
  readonly repository: string
  readonly digest: Digest
  /** Tags it was pushed as (it may have moved off them since). */
  readonly tags: Set<string>
  readonly names: ReadonlySet<Digest>
}

/** Digests followed down one list (children, nested children, their blobs). */
const MAX_NAMES_PER_LIST = 10_000
/** Nested indexes followed. */
const MAX_DEPTH = 4

export class ListIndex {
  readonly #lists: LRUCache<string, IndexedList>
  /** `repository@digest` → keys of the lists naming it. */
  readonly #namedBy = new Map<string, Set<string>>()

  constructor(maxLists: number) {
    this.#lists = new LRUCache({ max: Math.max(1, maxLists), dispose: (list, key) => this.#unlink(key, list) })
  }

  get size(): number {
    return this.#lists.size
  }

  /**
   * A list pushed as `repository:tag`. Its children's manifests are read from `bodyOf` (the
   * manifest cache, which the push's own validation has just filled); a child not there is
   * indexed without its blobs.
   */
  recordList(repository: string, tag: string, digest: Digest, list: Manifest, bodyOf: (digest: Digest) => Buffer | undefined): void {
    if (list.kind !== 'index') return
    const key = `${repository}@${digest}`
    const known = this.#lists.get(key)
    if (known !== undefined) {
      known.tags.add(tag)
      return
    }
    const names = new Set<Digest>()
    const follow = (m: Manifest, depth: number): void => {
      if (m.kind !== 'index' || depth > MAX_DEPTH) return
      for (const child of m.manifests) {
        if (names.size >= MAX_NAMES_PER_LIST) return
        if (names.has(child.digest)) continue
        names.add(child.digest)
        const raw = bodyOf(child.digest)
        if (raw === undefined) continue
        const parsed = parseManifest(raw, undefined)
        if ('problem' in parsed) continue
        if (parsed.kind === 'index') follow(parsed, depth + 1)
        else if (parsed.kind === 'image') for (const b of [parsed.config, ...parsed.layers]) names.add(b.digest)
      }
    }
    follow(list, 1)
    names.delete(digest)
    const entry: IndexedList = { repository, digest, tags: new Set([tag]), names }
    this.#lists.set(key, entry)
    for (const name of names) {
      const at = `${repository}@${name}`
      let lists = this.#namedBy.get(at)
      if (lists === undefined) this.#namedBy.set(at, (lists = new Set()))
      lists.add(key)
    }
  }

  /** Whether the list is indexed (with `tag`, when given). */
  has(repository: string, digest: Digest, tag?: string): boolean {
    const list = this.#lists.peek(`${repository}@${digest}`)
    return list !== undefined && (tag === undefined || list.tags.has(tag))
  }

  /** The lists of `repository` that name `digest`, as far as the index knows. */
  listsNaming(repository: string, digest: Digest): IndexedList[] {
    const keys = this.#namedBy.get(`${repository}@${digest}`)
    if (keys === undefined) return []
    const out: IndexedList[] = []
    // peek: a delete's lookup does not make a list more recent.
    for (const key of keys) {
      const list = this.#lists.peek(key)
      if (list !== undefined) out.push(list)
    }
    return out
  }

  /** The registry says `tag` no longer points at this list. */
  untag(list: IndexedList, tag: string): void {
    list.tags.delete(tag)
    if (list.tags.size === 0) this.forget(list.repository, list.digest)
  }

  /** A list deleted (or no longer tagged anywhere the index knew). */
  forget(repository: string, digest: Digest): void {
    this.#lists.delete(`${repository}@${digest}`)
  }

  #unlink(key: string, list: IndexedList): void {
    for (const name of list.names) {
      const at = `${list.repository}@${name}`
      const lists = this.#namedBy.get(at)
      if (lists === undefined) continue
      lists.delete(key)
      if (lists.size === 0) this.#namedBy.delete(at)
    }
  }
}
