import { LRUCache } from 'lru-cache'
import type { Digest } from '../oci/digest.js'
import type { Manifest } from '../oci/manifest.js'

// Manifest bodies by digest, from the proxy's own lookups and from the manifest pushes that
// pass through it. A body is content-addressed, so it is the same in every repository and
// never goes stale; whether a repository holds it is always asked of the registry, never
// kept here (garbage collection and retention delete content without telling anyone).

export class ManifestCache {
  readonly #bodies: LRUCache<Digest, Manifest> | undefined

  constructor(maxBytes: number) {
    this.#bodies = maxBytes > 0 ? new LRUCache({ maxSize: maxBytes, sizeCalculation: (m) => Math.max(1, m.raw.length) }) : undefined
  }

  /** Keeps a parsed body, only under its own digest (it was hashed when parsed). */
  remember(manifest: Manifest): void {
    if (this.#bodies !== undefined && manifest.raw.length <= this.#bodies.maxSize) this.#bodies.set(manifest.digest, manifest)
  }

  body(digest: Digest): Manifest | undefined {
    return this.#bodies?.get(digest)
  }
}
