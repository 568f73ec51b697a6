import { LRUCache } from 'lru-cache'
import type { Digest } from '../oci/digest.js'
import type { Manifest } from '../oci/manifest.js'

// What the proxy knows a repository holds, from its own lookups and from the traffic that
// passed through it. Only content-addressed facts are kept (repository + digest exists,
// with its size); tag → digest is never cached because tags move. Entries expire: garbage
// collection and retention delete content without telling anyone.

export interface KnownContent {
  readonly kind: 'manifest' | 'blob'
  /** Undefined when the proxy saw it exist but not how big it is (a mount, say). */
  readonly size: number | undefined
  readonly mediaType: string | undefined
}

export interface ExistenceCacheOptions {
  readonly ttlMs: number
  readonly maxEntries: number
  readonly maxManifestBytes: number
}

export class ExistenceCache {
  readonly #entries: LRUCache<string, KnownContent> | undefined
  // Manifest bodies by digest: content-addressed, so the same in every repository. Whether a
  // repository holds one is still asked of #entries.
  readonly #bodies: LRUCache<Digest, Manifest> | undefined

  constructor(options: ExistenceCacheOptions) {
    const enabled = options.ttlMs > 0 && options.maxEntries > 0
    this.#entries = enabled ? new LRUCache({ max: options.maxEntries, ttl: options.ttlMs }) : undefined
    this.#bodies =
      enabled && options.maxManifestBytes > 0
        ? new LRUCache({ maxSize: options.maxManifestBytes, sizeCalculation: (m) => Math.max(1, m.raw.length) })
        : undefined
  }

  rememberBlob(repository: string, digest: Digest, size: number | undefined): void {
    this.#remember(repository, digest, { kind: 'blob', size, mediaType: undefined })
  }

  rememberManifest(repository: string, digest: Digest, mediaType: string | undefined, size: number | undefined, body?: Manifest): void {
    this.#remember(repository, digest, { kind: 'manifest', size, mediaType })
    if (body !== undefined && body.digest === digest && body.raw.length <= (this.#bodies?.maxSize ?? 0)) this.#bodies?.set(digest, body)
  }

  /** A DELETE went through: believe it at once. */
  forget(repository: string, digest: Digest): void {
    this.#entries?.delete(key(repository, digest))
  }

  get(repository: string, digest: Digest): KnownContent | undefined {
    return this.#entries?.get(key(repository, digest))
  }

  body(digest: Digest): Manifest | undefined {
    return this.#bodies?.get(digest)
  }

  get size(): number {
    return this.#entries?.size ?? 0
  }

  #remember(repository: string, digest: Digest, fact: KnownContent): void {
    if (this.#entries === undefined) return
    const k = key(repository, digest)
    const known = this.#entries.get(k, { updateAgeOnGet: false })
    // Keep what an earlier sighting knew and this one does not (a mount knows no size).
    this.#entries.set(k, {
      kind: fact.kind,
      size: fact.size ?? (known?.kind === fact.kind ? known.size : undefined),
      mediaType: fact.mediaType ?? (known?.kind === fact.kind ? known.mediaType : undefined),
    })
  }
}

function key(repository: string, digest: Digest): string {
  return `${repository}@${digest}`
}
