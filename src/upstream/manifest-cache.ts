import { LRUCache } from 'lru-cache'
import { algorithmOf, type Digest, digestOf } from '../oci/digest.js'

// Manifest bytes by digest, from the proxy's own lookups and from the manifest pushes that
// pass through it. Bytes are content-addressed, so they are the same in every repository and
// never go stale; whether a repository holds them is always asked of the registry, never kept
// here (garbage collection and retention delete content without telling anyone). Only bytes
// are kept: what they are (list, image, something else) is read again from them, under the
// registry's word for their type, at each use (cached-source.ts), never from the Content-Type
// a client happened to push them with.

export class ManifestCache {
  readonly #bodies: LRUCache<Digest, Buffer> | undefined

  constructor(maxBytes: number) {
    this.#bodies = maxBytes > 0 ? new LRUCache({ maxSize: maxBytes, sizeCalculation: (b) => Math.max(1, b.length) }) : undefined
  }

  /** Keeps bytes under `digest` only if they hash to it. */
  remember(digest: Digest, raw: Buffer): void {
    if (this.#bodies === undefined || raw.length > this.#bodies.maxSize) return
    if (digestOf(raw, algorithmOf(digest)) === digest) this.#bodies.set(digest, raw)
  }

  body(digest: Digest): Buffer | undefined {
    return this.#bodies?.get(digest)
  }
}
