import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import { type Digest, isDigest } from '../oci/digest.js'
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
    const known = ctx.fresh === true ? undefined : this.#cache.get(repository, digest)
    const body = known?.kind === 'manifest' ? this.#cache.body(digest) : undefined
    if (body !== undefined) {
      if (ctx.stats !== undefined) ctx.stats.cacheHits++
      return { status: 'found', value: { digest, mediaType: body.mediaType, size: body.raw.length, manifest: body } }
    }
    if (ctx.stats !== undefined) ctx.stats.cacheMisses++
    const answer = await this.#client.manifest(repository, digest, ctx)
    if (answer.status === 'found') {
      this.#cache.rememberManifest(repository, digest, answer.value.mediaType, answer.value.size, answer.value.manifest)
    } else if (answer.status === 'missing') {
      this.#cache.forget(repository, digest)
    }
    return answer
  }

  async blob(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<BlobContent>> {
    const known = ctx.fresh === true ? undefined : this.#cache.get(repository, digest)
    if (known?.kind === 'blob' && known.size !== undefined) {
      if (ctx.stats !== undefined) ctx.stats.cacheHits++
      return { status: 'found', value: { size: known.size } }
    }
    if (ctx.stats !== undefined) ctx.stats.cacheMisses++
    const answer = await this.#client.blob(repository, digest, ctx)
    if (answer.status === 'found') this.#cache.rememberBlob(repository, digest, answer.value.size)
    else if (answer.status === 'missing') this.#cache.forget(repository, digest)
    return answer
  }

  blobBytes(repository: string, digest: Digest, ctx: LookupContext, maxBytes: number): Promise<ContentLookup<Buffer>> {
    return this.#client.blobBytes(repository, digest, ctx, maxBytes)
  }

  async resolveTag(repository: string, reference: string, ctx: LookupContext): Promise<ContentLookup<TagResolution>> {
    const answer = await this.#client.resolveTag(repository, reference, ctx)
    // A HEAD by digest that finds nothing corrects the cache too.
    if (answer.status === 'missing' && isDigest(reference)) this.#cache.forget(repository, reference)
    return answer
  }
}
