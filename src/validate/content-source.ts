import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'

/** All the walk needs of a registry. The cache, retries and logging wrap an implementation. */
export interface ContentSource {
  manifest(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<ManifestContent>>
  blob(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<BlobContent>>
  /**
   * The bytes of an image config (at most `maxBytes`), to compare its platform with the
   * entry's; asked instead of `blob`, so it must also say whether the repository holds it.
   * Without it the walk does not compare platforms.
   */
  imageConfig?(repository: string, digest: Digest, ctx: LookupContext, maxBytes: number): Promise<ContentLookup<Buffer>>
}
