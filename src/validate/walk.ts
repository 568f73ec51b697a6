import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import type { Descriptor } from '../oci/descriptor.js'
import type { Digest } from '../oci/digest.js'
import type { ImageManifest, IndexManifest } from '../oci/manifest.js'
import { isNonDistributable } from '../oci/media-type.js'
import { formatPlatform, isAttestationPlatform } from '../oci/platform.js'
import type { ContentSource } from './content-source.js'
import type { Finding, GraphPath, WalkResult, WalkStats } from './finding.js'
import { limiter } from './limiter.js'

// The graph walk: every child manifest of the pushed index (recursively) and every config
// and layer blob of every image child, looked up in the target repository only. It collects
// every problem instead of stopping at the first, and is bounded in depth, fan-out,
// concurrency and time. Content problems are findings; it does not throw for them.

export interface WalkLimits {
  /** Deepest index nesting; the pushed index is depth 1. */
  readonly maxDepth: number
  /** Most descriptors (children and blobs) in the whole graph. */
  readonly maxDescriptors: number
  readonly concurrency: number
  readonly timeoutMs: number
}

export interface WalkInput {
  readonly repository: string
  readonly index: IndexManifest
  readonly source: ContentSource
  readonly limits: WalkLimits
  readonly ctx: LookupContext
}

/** The answer for lookups still queued when the walk stopped on a denied one. */
const STOPPED = { status: 'denied', httpStatus: 0 } as const

export async function walkIndex(input: WalkInput): Promise<WalkResult> {
  const walk = new Walk(input)
  return walk.run()
}

class Walk {
  readonly #in: WalkInput
  readonly #findings: Finding[] = []
  readonly #present: { path: GraphPath; descriptor: Descriptor }[] = []
  readonly #stats: WalkStats = { manifestsChecked: 0, blobsChecked: 0 }
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>
  readonly #manifests = new Map<Digest, Promise<ContentLookup<ManifestContent>>>()
  readonly #blobs = new Map<Digest, Promise<ContentLookup<BlobContent>>>()
  readonly #deadline = new AbortController()
  readonly #ctx: LookupContext
  #descriptors = 0
  #tooMany = false
  #stopped = false

  constructor(input: WalkInput) {
    this.#in = input
    this.#limit = limiter(input.limits.concurrency)
    const signal = input.ctx.signal === undefined ? this.#deadline.signal : AbortSignal.any([this.#deadline.signal, input.ctx.signal])
    this.#ctx = { ...input.ctx, signal }
  }

  async run(): Promise<WalkResult> {
    const timer = setTimeout(() => this.#deadline.abort(), this.#in.limits.timeoutMs)
    try {
      await this.#visitIndex(this.#in.index, [], 1)
    } finally {
      clearTimeout(timer)
    }
    let findings = this.#findings
    if (this.#deadline.signal.aborted) {
      // Lookups cut off by the deadline say nothing about the content: report the timeout once.
      findings = findings.filter((f) => f.kind !== 'lookup-failed')
      findings.push({ kind: 'timeout', limitMs: this.#in.limits.timeoutMs })
    }
    return { findings, stats: this.#stats, presentChildren: this.#present }
  }

  /** Counts a descriptor against the fan-out limit; false once the limit is passed. */
  #admit(): boolean {
    if (this.#tooMany || this.#stopped) return false
    if (++this.#descriptors > this.#in.limits.maxDescriptors) {
      this.#tooMany = true
      this.#findings.push({ kind: 'too-many', limit: this.#in.limits.maxDescriptors })
      return false
    }
    return !this.#deadline.signal.aborted
  }

  async #visitIndex(index: IndexManifest, chain: readonly Descriptor[], depth: number): Promise<void> {
    this.#findDuplicatePlatforms(index, chain)
    if (chain.length === 0 && index.manifests.length > this.#in.limits.maxDescriptors) {
      // Refuse a flood before a single lookup is made.
      this.#findings.push({ kind: 'too-many', limit: this.#in.limits.maxDescriptors })
      this.#tooMany = true
      return
    }
    await Promise.all(index.manifests.map((d) => this.#visitChild(d, chain, depth)))
  }

  async #visitChild(descriptor: Descriptor, parentChain: readonly Descriptor[], depth: number): Promise<void> {
    if (!this.#admit()) return
    const chain = [...parentChain, descriptor]
    const path: GraphPath = { chain }
    const lookup = await this.#lookupManifest(descriptor.digest)
    this.#stats.manifestsChecked++
    if (lookup.status !== 'found') {
      this.#recordAbsence(lookup, path, descriptor, 'child-missing')
      return
    }
    const found = lookup.value
    this.#present.push({ path, descriptor })
    if (found.size !== descriptor.size) {
      this.#findings.push({ kind: 'size-mismatch', path, descriptor, role: 'child', actual: found.size })
    }
    if (found.mediaType !== descriptor.mediaType) {
      this.#findings.push({ kind: 'media-type-mismatch', path, descriptor, actual: found.mediaType })
    }
    const child = found.manifest
    if (child === undefined) {
      if (found.problem !== undefined) this.#findings.push({ kind: 'child-unreadable', path, descriptor, problem: found.problem })
      return
    }
    if (child.kind === 'index') {
      if (depth + 1 > this.#in.limits.maxDepth) {
        this.#findings.push({ kind: 'too-deep', path, descriptor, limit: this.#in.limits.maxDepth })
        return
      }
      await this.#visitIndex(child, chain, depth + 1)
    } else if (child.kind === 'image') {
      await this.#visitImage(child, path)
    }
  }

  async #visitImage(image: ImageManifest, path: GraphPath): Promise<void> {
    const blobs: { descriptor: Descriptor; role: 'config' | 'layer'; layerIndex?: number }[] = [
      { descriptor: image.config, role: 'config' },
      ...image.layers.map((descriptor, layerIndex) => ({ descriptor, role: 'layer' as const, layerIndex })),
    ]
    await Promise.all(
      blobs.map(async ({ descriptor, role, layerIndex }) => {
        // Non-distributable layers live at their `urls`, not in the registry (image-spec
        // layer.md); a registry is not expected to hold them.
        if (isNonDistributable(descriptor.mediaType) || (descriptor.urls !== undefined && descriptor.urls.length > 0)) return
        if (!this.#admit()) return
        const lookup = await this.#lookupBlob(descriptor.digest)
        this.#stats.blobsChecked++
        if (lookup.status !== 'found') {
          if (lookup.status === 'missing') {
            this.#findings.push(layerIndex === undefined ? { kind: 'blob-missing', path, descriptor, role } : { kind: 'blob-missing', path, descriptor, role, layerIndex })
          } else {
            this.#recordAbsence(lookup, path, descriptor, 'blob-missing')
          }
          return
        }
        if (lookup.value.size !== undefined && lookup.value.size !== descriptor.size) {
          this.#findings.push({ kind: 'size-mismatch', path, descriptor, role, actual: lookup.value.size })
        }
      }),
    )
  }

  #recordAbsence(
    lookup: Exclude<ContentLookup<unknown>, { status: 'found' }>,
    path: GraphPath,
    descriptor: Descriptor,
    missingKind: 'child-missing' | 'blob-missing',
  ): void {
    if (lookup.status === 'missing' && missingKind === 'child-missing') this.#findings.push({ kind: 'child-missing', path, descriptor })
    else if (lookup.status === 'denied') {
      this.#findings.push({ kind: 'denied', path, descriptor, httpStatus: lookup.httpStatus })
      // These credentials cannot read the repository: the registry must answer the push
      // itself, so looking further would only probe on the client's behalf.
      this.#stopped = true
    }
    else if (lookup.status === 'failed') this.#findings.push({ kind: 'lookup-failed', path, descriptor, reason: lookup.reason })
  }

  #findDuplicatePlatforms(index: IndexManifest, chain: readonly Descriptor[]): void {
    const seen = new Map<string, Descriptor>()
    for (const d of index.manifests) {
      if (d.platform === undefined || isAttestationPlatform(d.platform)) continue
      const key = formatPlatform(d.platform)
      const first = seen.get(key)
      if (first === undefined) seen.set(key, d)
      else this.#findings.push({ kind: 'duplicate-platform', path: { chain }, descriptors: [first, d], platform: d.platform })
    }
  }

  #lookupManifest(digest: Digest): Promise<ContentLookup<ManifestContent>> {
    let pending = this.#manifests.get(digest)
    if (pending === undefined) {
      pending = this.#limit(() => (this.#stopped ? Promise.resolve(STOPPED) : this.#in.source.manifest(this.#in.repository, digest, this.#ctx)))
      this.#manifests.set(digest, pending)
    }
    return pending
  }

  #lookupBlob(digest: Digest): Promise<ContentLookup<BlobContent>> {
    let pending = this.#blobs.get(digest)
    if (pending === undefined) {
      pending = this.#limit(() => (this.#stopped ? Promise.resolve(STOPPED) : this.#in.source.blob(this.#in.repository, digest, this.#ctx)))
      this.#blobs.set(digest, pending)
    }
    return pending
  }
}
