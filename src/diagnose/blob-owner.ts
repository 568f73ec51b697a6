import type { ContentLookup, LookupContext } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'
import type { ImageManifest } from '../oci/manifest.js'
import { isNonDistributable } from '../oci/media-type.js'
import { parsePlatform } from '../oci/platform.js'
import type { Prober } from './prober.js'

// Which kind of image in a repository uses a blob, found by reading the repository's tagged
// images. Asked when the registry could not mount a blob out of that repository for the
// docker CLI: docker gives up on such a mount unless the image is a Windows one (whose foreign
// layers the registry never holds), so only for a blob of an ordinary image does the proxy
// know better than the registry's answer.

export type BlobUse =
  /** A distributable layer or the config of an image that is not Windows: the mount must work. */
  | 'ordinary'
  /** A foreign / non-distributable layer, or any blob of a Windows image: docker tolerates the refusal. */
  | 'tolerated'
  /** Not found in the manifests read, or their platform is unknown. */
  | 'unknown'

export interface BlobOwnerSource extends Pick<Prober, 'resolveTag' | 'manifest' | 'blobBytes'> {
  listTags(repository: string, ctx: LookupContext, max: number): Promise<ContentLookup<string[]>>
}

/** Manifests read at most: the source of a mount is one image's repository, with few tags. */
const MAX_MANIFESTS = 24
const MAX_TAGS = 16
const MAX_CONFIG_BYTES = 1 << 20

export async function findBlobUse(source: BlobOwnerSource, repository: string, blob: Digest, ctx: LookupContext): Promise<BlobUse> {
  const tags = await source.listTags(repository, ctx, MAX_TAGS)
  if (tags.status !== 'found') return 'unknown'
  let budget = MAX_MANIFESTS
  const read = async (reference: string) => {
    if (budget-- <= 0) return undefined
    const head = await source.resolveTag(repository, reference, ctx)
    if (head.status !== 'found') return undefined
    const found = await source.manifest(repository, head.value.digest, ctx)
    return found.status === 'found' ? found.value.manifest : undefined
  }
  for (const tag of tags.value) {
    const m = await read(tag)
    if (m?.kind === 'image') {
      const use = await useIn(source, repository, m, undefined, blob, ctx)
      if (use !== undefined) return use
    } else if (m?.kind === 'index') {
      for (const entry of m.manifests) {
        if (budget <= 0) return 'unknown'
        const child = await read(entry.digest)
        if (child?.kind !== 'image') continue
        const use = await useIn(source, repository, child, entry.platform?.os, blob, ctx)
        if (use !== undefined) return use
      }
    }
    if (budget <= 0) break
  }
  return 'unknown'
}

/** How `image` uses `blob`, or undefined when it does not. */
async function useIn(source: BlobOwnerSource, repository: string, image: ImageManifest, os: string | undefined, blob: Digest, ctx: LookupContext): Promise<BlobUse | undefined> {
  const layer = image.layers.find((l) => l.digest === blob)
  if (layer === undefined && image.config.digest !== blob) return undefined
  if (layer !== undefined && isNonDistributable(layer.mediaType)) return 'tolerated'
  const imageOs = os ?? (await configOs(source, repository, image, ctx))
  if (imageOs === undefined) return 'unknown'
  return imageOs === 'windows' ? 'tolerated' : 'ordinary'
}

async function configOs(source: BlobOwnerSource, repository: string, image: ImageManifest, ctx: LookupContext): Promise<string | undefined> {
  const config = await source.blobBytes(repository, image.config.digest, ctx, MAX_CONFIG_BYTES)
  if (config.status !== 'found') return undefined
  try {
    return parsePlatform(JSON.parse(config.value.toString('utf8')))?.os
  } catch {
    return undefined
  }
}
