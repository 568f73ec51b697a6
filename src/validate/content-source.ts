import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'

/** All the walk needs of a registry. The cache, retries and logging wrap an implementation. */
export interface ContentSource {
  manifest(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<ManifestContent>>
  blob(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<BlobContent>>
}
