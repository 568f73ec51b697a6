import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'

/** All the walk needs of a registry. The cache, retries and logging wrap an implementation. */
export interface ContentSource {
  manifest(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<ManifestContent>>
  blob(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<BlobContent>>
  /**
   * The bytes of an image config (at most `maxBytes`), to compare its platform with the
   * entry's. Asked only after `blob` found it, so an answer may come from a cache by digest.
   * Without it the walk does not compare platforms.
   */
  imageConfig?(repository: string, digest: Digest, ctx: LookupContext, maxBytes: number): Promise<ContentLookup<Buffer>>
}
