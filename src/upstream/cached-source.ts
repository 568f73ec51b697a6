import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'
import { parseManifest } from '../oci/manifest.js'
import { ManifestCache } from './manifest-cache.js'
import type { RegistryClient, TagResolution } from './registry-client.js'

// The registry as the walk and the diagnosis see it. Content is immutable, existence is not:
// garbage collection, retention and an admin's DELETE straight at the registry remove content
// without telling anyone. So every lookup asks the registry whether the repository holds the
// digest now (one HEAD per child and blob, on kept-alive connections), and only manifest
// *bodies* come from the cache: a child already seen costs a HEAD instead of a GET. What a
// cached body is comes from its bytes, read under the type the registry states for it in
// that HEAD, just as a GET's answer would be read: never from how it was pushed.

/** Image config bytes kept for the platform check: configs are a few KiB, and content-addressed. */
const CONFIG_CACHE_BYTES = 8 << 20

export class CachedSource {
  readonly #client: RegistryClient
  readonly #cache: ManifestCache
  readonly #configs = new ManifestCache(CONFIG_CACHE_BYTES)

  constructor(client: RegistryClient, cache: ManifestCache) {
    this.#client = client
    this.#cache = cache
  }

  async manifest(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<ManifestContent>> {
    const body = this.#cache.body(digest)
    if (body !== undefined) {
      const here = await this.#client.resolveTag(repository, digest, ctx)
      if (here.status !== 'found') return here
      if (ctx.stats !== undefined) ctx.stats.cacheHits++
      const parsed = parseManifest(body, here.value.mediaType ?? '')
      const size = here.value.size ?? body.length
      const value: ManifestContent =
        'problem' in parsed
          ? { digest, mediaType: here.value.mediaType ?? '', size, manifest: undefined, problem: parsed.problem }
          : { digest, mediaType: parsed.mediaType, size, manifest: parsed }
      return { status: 'found', value }
    }
    if (ctx.stats !== undefined) ctx.stats.cacheMisses++
    const answer = await this.#client.manifest(repository, digest, ctx)
    if (answer.status === 'found' && answer.value.manifest !== undefined) this.#cache.remember(digest, answer.value.manifest.raw)
    return answer
  }

  blob(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<BlobContent>> {
    return this.#client.blob(repository, digest, ctx)
  }

  /**
   * An image config's bytes, for the platform check; the answer is also the walk's existence
   * check of the config, so it costs what the HEAD it replaces cost. Bytes seen before are not
   * fetched again (content-addressed), but whether the repository holds them still is asked.
   */
  async imageConfig(repository: string, digest: Digest, ctx: LookupContext, maxBytes: number): Promise<ContentLookup<Buffer>> {
    const known = this.#configs.body(digest)
    if (known !== undefined && known.length <= maxBytes) {
      const here = await this.#client.blob(repository, digest, ctx)
      // (Not counted in cacheHits: that figure is of manifest bodies, as the records and metrics say.)
      return here.status === 'found' ? { status: 'found', value: known } : here
    }
    const answer = await this.#client.blobBytes(repository, digest, ctx, maxBytes)
    if (answer.status === 'found') this.#configs.remember(digest, answer.value)
    return answer
  }

  blobBytes(repository: string, digest: Digest, ctx: LookupContext, maxBytes: number): Promise<ContentLookup<Buffer>> {
    return this.#client.blobBytes(repository, digest, ctx, maxBytes)
  }

  resolveTag(repository: string, reference: string, ctx: LookupContext): Promise<ContentLookup<TagResolution>> {
    return this.#client.resolveTag(repository, reference, ctx)
  }
}
