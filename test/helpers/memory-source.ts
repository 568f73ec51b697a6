import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../../src/oci/content-lookup.js'
import type { Digest } from '../../src/oci/digest.js'
import { parseManifest } from '../../src/oci/manifest.js'
import type { Prober } from '../../src/diagnose/prober.js'
import type { Blob, BuiltImage, BuiltIndex } from './oci-builder.js'

// An in-memory registry for unit tests of the walk and the diagnosis: repositories of
// manifests, blobs and tags, with switches for odd answers, and counters.

type Answer = 'missing' | 'denied' | 'failed'

export class MemorySource implements Prober {
  readonly manifests = new Map<string, Blob>()
  readonly blobs = new Map<string, number>()
  readonly tags = new Map<string, Digest>()
  /** repository@digest → a forced answer. */
  readonly forced = new Map<string, Answer>()
  calls = 0
  inFlight = 0
  maxInFlight = 0
  delayMs = 0

  addImage(repo: string, image: BuiltImage, tag?: string): void {
    this.manifests.set(`${repo}@${image.manifest.digest}`, image.manifest)
    for (const b of [image.config, ...image.layers]) this.blobs.set(`${repo}@${b.digest}`, b.bytes.length)
    if (tag !== undefined) this.tags.set(`${repo}:${tag}`, image.manifest.digest as Digest)
  }

  addIndex(repo: string, index: BuiltIndex, tag?: string): void {
    for (const child of index.children) {
      if ('layers' in child) this.addImage(repo, child)
      else this.addIndex(repo, child)
    }
    this.manifests.set(`${repo}@${index.manifest.digest}`, index.manifest)
    if (tag !== undefined) this.tags.set(`${repo}:${tag}`, index.manifest.digest as Digest)
  }

  async manifest(repository: string, digest: Digest, _ctx: LookupContext): Promise<ContentLookup<ManifestContent>> {
    return this.#answer<ManifestContent>(repository, digest, () => {
      const m = this.manifests.get(`${repository}@${digest}`)
      if (m === undefined) return { status: 'missing' }
      const parsed = parseManifest(m.bytes, m.mediaType)
      return 'problem' in parsed
        ? { status: 'found', value: { digest, mediaType: m.mediaType, size: m.bytes.length, manifest: undefined, problem: parsed.problem } }
        : { status: 'found', value: { digest, mediaType: m.mediaType, size: m.bytes.length, manifest: parsed } }
    })
  }

  async blob(repository: string, digest: Digest, _ctx: LookupContext): Promise<ContentLookup<BlobContent>> {
    return this.#answer<BlobContent>(repository, digest, () => {
      const size = this.blobs.get(`${repository}@${digest}`)
      return size === undefined ? { status: 'missing' } : { status: 'found', value: { size } }
    })
  }

  async resolveTag(repository: string, reference: string, _ctx: LookupContext): Promise<ContentLookup<{ digest: Digest; mediaType: string | undefined }>> {
    return this.#answer<{ digest: Digest; mediaType: string | undefined }>(repository, reference, () => {
      if (reference.includes(':')) {
        const m = this.manifests.get(`${repository}@${reference}`)
        return m === undefined ? { status: 'missing' } : { status: 'found', value: { digest: reference as Digest, mediaType: m.mediaType } }
      }
      const digest = this.tags.get(`${repository}:${reference}`)
      return digest === undefined ? { status: 'missing' } : { status: 'found', value: { digest, mediaType: this.manifests.get(`${repository}@${digest}`)?.mediaType } }
    })
  }

  async blobBytes(repository: string, digest: Digest, _ctx: LookupContext, _max: number): Promise<ContentLookup<Buffer>> {
    return this.#answer<Buffer>(repository, digest, () => {
      const b = this.configs.get(digest)
      return b === undefined || !this.blobs.has(`${repository}@${digest}`) ? { status: 'missing' } : { status: 'found', value: b }
    })
  }

  /** Config bytes by digest, for platform checks. */
  readonly configs = new Map<string, Buffer>()

  rememberConfig(image: BuiltImage): void {
    this.configs.set(image.config.digest, image.config.bytes)
  }

  async #answer<T>(repository: string, key: string, real: () => ContentLookup<T>): Promise<ContentLookup<T>> {
    this.calls++
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs))
      const forced = this.forced.get(`${repository}@${key}`)
      if (forced === 'missing') return { status: 'missing' }
      if (forced === 'denied') return { status: 'denied', httpStatus: 401 }
      if (forced === 'failed') return { status: 'failed', reason: 'the registry answered 500' }
      return real()
    } finally {
      this.inFlight--
    }
  }
}
