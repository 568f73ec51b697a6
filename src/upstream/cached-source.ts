import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'
import type { ExistenceCache } from './existence-cache.js'
import type { RegistryClient, TagResolution } from './registry-client.js'

// The registry as the walk and the diagnosis see it: the existence cache in front of the
// client. A hit costs no request; a found answer is remembered; nothing negative is
// remembered, because a missing child may be pushed a second later.

export class CachedSource {
  readonly #client: RegistryClient
  readonly #cache: ExistenceCache

  constructor(client: RegistryClient, cache: ExistenceCache) {
    this.#client = client
    this.#cache = cache
  }

  async manifest(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<ManifestContent>> {
    const known = this.#cache.get(repository, digest)
    const body = known?.kind === 'manifest' ? this.#cache.body(digest) : undefined
    if (body !== undefined) {
      if (ctx.stats !== undefined) ctx.stats.cacheHits++
      return { status: 'found', value: { digest, mediaType: body.mediaType, size: body.raw.length, manifest: body } }
    }
    const answer = await this.#client.manifest(repository, digest, ctx)
    if (answer.status === 'found') {
      this.#cache.rememberManifest(repository, digest, answer.value.mediaType, answer.value.size, answer.value.manifest)
    }
    return answer
  }

  async blob(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<BlobContent>> {
    const known = this.#cache.get(repository, digest)
    if (known?.kind === 'blob' && known.size !== undefined) {
      if (ctx.stats !== undefined) ctx.stats.cacheHits++
      return { status: 'found', value: { size: known.size } }
    }
    const answer = await this.#client.blob(repository, digest, ctx)
    if (answer.status === 'found') this.#cache.rememberBlob(repository, digest, answer.value.size)
    return answer
  }

  blobBytes(repository: string, digest: Digest, ctx: LookupContext, maxBytes: number): Promise<ContentLookup<Buffer>> {
    return this.#client.blobBytes(repository, digest, ctx, maxBytes)
  }

  resolveTag(repository: string, tag: string, ctx: LookupContext): Promise<ContentLookup<TagResolution>> {
    return this.#client.resolveTag(repository, tag, ctx)
  }
}
