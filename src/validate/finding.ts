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

export type BlobRole = 'config' | 'layer'

export type Finding =
  /** A child manifest the index names is not in the repository. */
  | { readonly kind: 'child-missing'; readonly path: GraphPath; readonly descriptor: Descriptor }
  /** A config or layer of a child is not in the repository. */
  | { readonly kind: 'blob-missing'; readonly path: GraphPath; readonly descriptor: Descriptor; readonly role: BlobRole; readonly layerIndex?: number }
  /** The descriptor's size differs from the stored content's. */
  | { readonly kind: 'size-mismatch'; readonly path: GraphPath; readonly descriptor: Descriptor; readonly role: 'child' | BlobRole; readonly actual: number }
  /** A child descriptor's media type differs from the stored manifest's. */
  | { readonly kind: 'media-type-mismatch'; readonly path: GraphPath; readonly descriptor: Descriptor; readonly actual: string }
  /** The stored child manifest does not parse. */
  | { readonly kind: 'child-unreadable'; readonly path: GraphPath; readonly descriptor: Descriptor; readonly problem: string }
  /** Two entries of one index claim the same platform. */
  | { readonly kind: 'duplicate-platform'; readonly path: GraphPath; readonly descriptors: readonly [Descriptor, Descriptor]; readonly platform: Platform }
  /** Nested indexes deeper than the limit. */
  | { readonly kind: 'too-deep'; readonly path: GraphPath; readonly descriptor: Descriptor; readonly limit: number }
  /** More descriptors than the limit. */
  | { readonly kind: 'too-many'; readonly limit: number }
  /** The registry refused the client's credentials for a lookup. */
  | { readonly kind: 'denied'; readonly path: GraphPath; readonly descriptor: Descriptor; readonly httpStatus: number }
  /** The registry could not answer a lookup. */
  | { readonly kind: 'lookup-failed'; readonly path: GraphPath; readonly descriptor: Descriptor; readonly reason: string }
  /** The time budget ran out before the walk finished. */
  | { readonly kind: 'timeout'; readonly limitMs: number }

export type FindingKind = Finding['kind']

export interface WalkStats {
  manifestsChecked: number
  blobsChecked: number
}

export interface WalkResult {
  readonly findings: readonly Finding[]
  readonly stats: WalkStats
  /** Every child the walk found in the repository, with its chain, for the diagnosis. */
  readonly presentChildren: readonly { readonly path: GraphPath; readonly descriptor: Descriptor }[]
}
