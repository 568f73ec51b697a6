import type { Descriptor } from '../oci/descriptor.js'
import type { Platform } from '../oci/platform.js'

// What the walk found wrong, as facts. Findings stay structured until diagnose/ explains them.

/** Where in the graph: the chain of child descriptors from the pushed index down. */
export interface GraphPath {
  /** Child manifests from the top, outermost first (empty for the pushed index itself). */
  readonly chain: readonly Descriptor[]
}

/** The platform an entry belongs to: the nearest platform on its chain. */
export function platformOf(path: GraphPath): Platform | undefined {
  for (let i = path.chain.length - 1; i >= 0; i--) {
    const p = path.chain[i]?.platform
    if (p !== undefined) return p
  }
  return undefined
}

/** The platforms of every place an object is named. */
export function platformsOf(paths: readonly GraphPath[]): (Platform | undefined)[] {
  return paths.map(platformOf)
}

/**
 * What an object is to the list: a child manifest, an image's config or layer, or an index
 * entry that is a blob itself (a BuildKit cache index lists layers and its cache config).
 */
export type BlobRole = 'config' | 'layer' | 'entry'

export type Finding =
  /** A child manifest the index names is not in the repository. */
  | { readonly kind: 'child-missing'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor }
  /** A blob (an image's config or layer, or a blob entry of the index) is not in the repository. */
  | { readonly kind: 'blob-missing'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor; readonly role: BlobRole; readonly layerIndex?: number }
  /** The descriptor's size differs from the stored content's. */
  | { readonly kind: 'size-mismatch'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor; readonly role: 'child' | BlobRole; readonly actual: number }
  /** A child descriptor's media type differs from the stored manifest's. */
  | { readonly kind: 'media-type-mismatch'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor; readonly actual: string }
  /** The stored child manifest does not parse. */
  | { readonly kind: 'child-unreadable'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor; readonly problem: string }
  /**
   * Two entries of one index that nothing tells apart (same platform, media type and
   * annotations): a client always takes the first. Allowed by image-index.md, so only a warning.
   */
  | { readonly kind: 'duplicate-entry'; readonly path: GraphPath; readonly descriptors: readonly [Descriptor, Descriptor] }
  /**
   * An entry's platform is not what its image's config says (os, architecture, variant, or a
   * Windows build): clients of the entry's platform would pull an image that cannot run.
   */
  | { readonly kind: 'platform-mismatch'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor; readonly entry: Platform; readonly image: Platform }
  /** Platforms the repository requires (validation.requiredPlatforms) that no entry of the list is. */
  | { readonly kind: 'platform-missing'; readonly missing: readonly string[]; readonly present: readonly string[] }
  /** Nested indexes deeper than the limit. */
  | { readonly kind: 'too-deep'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor; readonly limit: number }
  /** More distinct objects than the limit (or, to bound the work, far more references to them). */
  | { readonly kind: 'too-many'; readonly limit: number; readonly counted: 'objects' | 'references' }
  /** The registry refused the client's credentials for a lookup. */
  | { readonly kind: 'denied'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor; readonly httpStatus: number }
  /** The registry could not answer a lookup. */
  | { readonly kind: 'lookup-failed'; readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor; readonly reason: string }
  /** The time budget ran out before the walk finished. */
  | { readonly kind: 'timeout'; readonly limitMs: number }

export type FindingKind = Finding['kind']

export interface WalkStats {
  /** Distinct child manifests looked up. */
  manifestsChecked: number
  /** Distinct blobs looked up. */
  blobsChecked: number
}

export interface WalkResult {
  readonly findings: readonly Finding[]
  readonly stats: WalkStats
  /** Every child manifest the walk found in the repository, with the places it is named. */
  readonly presentChildren: readonly { readonly paths: readonly GraphPath[]; readonly descriptor: Descriptor }[]
}
