import type { ContentLookup, LookupContext } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'
import type { ContentSource } from '../validate/content-source.js'

/** What the diagnosis asks of the registry beyond the walk: tags now, and small blobs. */
export interface Prober extends ContentSource {
  /** HEAD <name>/manifests/<tag or digest>: the digest it resolves to now. Never cached. */
  resolveTag(repository: string, reference: string, ctx: LookupContext): Promise<ContentLookup<{ readonly digest: Digest; readonly mediaType: string | undefined }>>
  blobBytes(repository: string, digest: Digest, ctx: LookupContext, maxBytes: number): Promise<ContentLookup<Buffer>>
}
