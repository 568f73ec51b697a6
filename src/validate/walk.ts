import { setMaxListeners } from 'node:events'
import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import type { Descriptor } from '../oci/descriptor.js'
import type { Digest } from '../oci/digest.js'
import type { ImageManifest, IndexManifest } from '../oci/manifest.js'
import { isManifest, isNonDistributable } from '../oci/media-type.js'
import { formatPlatform, isAttestationPlatform, meetsPlatform, parsePlatform, parsePlatformSpec, type Platform, platformKey, platformsDisagree } from '../oci/platform.js'
import type { ContentSource } from './content-source.js'
import type { BlobRole, Finding, GraphPath, WalkResult, WalkStats } from './finding.js'
import { limiter } from './limiter.js'

// The graph walk: every entry of the pushed index (recursively), and every config and layer
// blob of every image child, looked up in the target repository only. What the repository
// holds at a digest says what it is (a manifest, walked; or a blob), never the entry's type. Each distinct object is
// looked up and judged once, however often it is named; the places it is named are kept for
// the diagnosis. It collects every problem instead of stopping at the first, and is bounded in
// depth, distinct objects, references, concurrency and time. Content problems are findings;
// it does not throw for them.

export interface WalkLimits {
  /** Deepest index nesting; the pushed index is depth 1. */
  readonly maxDepth: number
  /** Most distinct objects (child manifests and blobs) in the whole graph. */
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
  /** Platforms (`linux/arm64`, `linux/arm/v7`) the pushed index must have an entry for. */
  readonly requiredPlatforms?: readonly string[]
}

/**
 * References in all (an object named again counts again): bounds the CPU work of a list that
 * names a few objects a great many times. Far above what real lists do (50 children sharing 99
 * layers are 5 050 references).
 */
const MIN_REFERENCE_LIMIT = 100_000
/** Places kept per object for the diagnosis; a list may name one digest thousands of times. */
const MAX_PATHS = 32

/** Config types that are an image's runtime config; any other config is an artifact's or a cache's. */
const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json'])
/** Largest image config read for its platform; real ones are a few KiB (their history grows them). */
const MAX_CONFIG_BYTES = 1 << 20

/** The platform entries claim for one image, and where. */
interface PlatformClaim {
  readonly entry: Platform
  readonly descriptor: Descriptor
  readonly paths: GraphPath[]
}

/** The answer for lookups still queued when the walk stopped on a denied one. */
const STOPPED = { status: 'denied', httpStatus: 0 } as const

export async function walkIndex(input: WalkInput): Promise<WalkResult> {
  return new Walk(input).run()
}

/**
 * How an index entry is looked up. What the registry holds at the digest decides what it is,
 * never the entry's media type: every entry is asked for as a manifest first (a list naming an
 * image under `…manifest.v1+JSON`, a layer type or "x" still gets the image's config and
 * layers checked). Only an entry that says it is a manifest must be one; any other may also be
 * a blob of the repository (BuildKit's registry cache lists its layers in `manifests[]`).
 */
type EntryKind = 'manifest' | 'either'

function entryKind(mediaType: string): EntryKind {
  return isManifest(mediaType) ? 'manifest' : 'either'
}

/**
 * A manifest lookup that says the digest is not a manifest of the repository. distribution
 * finds a layer through its legacy blob link when asked for a manifest, fails to read it as
 * one, and answers 500: that object is a blob, and no client can pull it as a manifest either.
 */
function notAManifest(lookup: ContentLookup<ManifestContent>): boolean {
  return lookup.status === 'missing' || (lookup.status === 'failed' && lookup.httpStatus === 500)
}

/** A child manifest, once, with every place the graph names it. */
interface ChildNode {
  readonly descriptor: Descriptor
  readonly paths: GraphPath[]
  /** Descriptors naming it with another size or media type than the first (a broken entry). */
  readonly variants: Map<string, { descriptor: Descriptor; paths: GraphPath[] }>
  done: Promise<void>
}

class Walk {
  readonly #in: WalkInput
  readonly #findings: Finding[] = []
  readonly #present: { paths: readonly GraphPath[]; descriptor: Descriptor }[] = []
  readonly #stats: WalkStats = { manifestsChecked: 0, blobsChecked: 0 }
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>
  readonly #children = new Map<Digest, ChildNode>()
  readonly #manifests = new Map<Digest, Promise<ContentLookup<ManifestContent>>>()
  readonly #blobs = new Map<Digest, Promise<ContentLookup<BlobContent>>>()
  readonly #configs = new Map<Digest, Promise<ContentLookup<Buffer>>>()
  readonly #deadline = new AbortController()
  readonly #ctx: LookupContext
  readonly #maxReferences: number
  #objects = 0
  #references = 0
  #tooMany = false
  #stopped = false

  constructor(input: WalkInput) {
    this.#in = input
    this.#limit = limiter(input.limits.concurrency)
    this.#maxReferences = Math.max(MIN_REFERENCE_LIMIT, 2 * input.limits.maxDescriptors)
    const signal = input.ctx.signal === undefined ? this.#deadline.signal : AbortSignal.any([this.#deadline.signal, input.ctx.signal])
    // Every lookup in flight listens on it: as many as the concurrency allows.
    setMaxListeners(input.limits.concurrency + 16, signal)
    this.#ctx = { ...input.ctx, signal }
  }

  async run(): Promise<WalkResult> {
    const timer = setTimeout(() => this.#deadline.abort(), this.#in.limits.timeoutMs)
    try {
      const top = this.#in.index.manifests
      this.#findMissingPlatforms(top)
      if (top.length > this.#maxReferences) this.#flood('references')
      else if (new Set(top.map((d) => d.digest)).size > this.#in.limits.maxDescriptors) this.#flood('objects')
      // A flood is refused before a single lookup is made.
      else await this.#visitIndex(this.#in.index, [], 1)
    } finally {
      clearTimeout(timer)
    }
    let findings = this.#findings
    // The walk's own deadline, or the caller's (a budget it shares with the diagnosis).
    if (this.#ctx.signal?.aborted === true) {
      // Lookups cut off by the deadline say nothing about the content: report the timeout once.
      findings = findings.filter((f) => f.kind !== 'lookup-failed')
      findings.push({ kind: 'timeout', limitMs: this.#in.limits.timeoutMs })
    }
    return { findings, stats: this.#stats, presentChildren: this.#present }
  }

  #flood(counted: 'objects' | 'references'): void {
    if (this.#tooMany) return
    this.#tooMany = true
    this.#findings.push({ kind: 'too-many', limit: counted === 'objects' ? this.#in.limits.maxDescriptors : this.#maxReferences, counted })
  }

  /** Counts one more reference, and a new object when `isNew`; false once a limit is passed. */
  #admit(isNew: boolean): boolean {
    if (this.#tooMany || this.#stopped) return false
    if (++this.#references > this.#maxReferences) {
      this.#flood('references')
      return false
    }
    if (isNew && ++this.#objects > this.#in.limits.maxDescriptors) {
      this.#flood('objects')
      return false
    }
    return this.#ctx.signal?.aborted !== true
  }

  async #visitIndex(index: IndexManifest, chain: readonly Descriptor[], depth: number): Promise<void> {
    this.#findDuplicateEntries(index, chain)
    await Promise.all(index.manifests.map((d) => this.#visitChild(d, { chain: [...chain, d] }, depth)))
  }

  #visitChild(descriptor: Descriptor, path: GraphPath, depth: number): Promise<void> {
    const known = this.#children.get(descriptor.digest)
    if (known !== undefined) {
      if (!this.#admit(false)) return Promise.resolve()
      if (known.paths.length < MAX_PATHS) known.paths.push(path)
      if (descriptor.size !== known.descriptor.size || descriptor.mediaType !== known.descriptor.mediaType) {
        const key = `${descriptor.size} ${descriptor.mediaType}`
        const variant = known.variants.get(key) ?? { descriptor, paths: [] }
        if (variant.paths.length < MAX_PATHS) variant.paths.push(path)
        known.variants.set(key, variant)
      }
      return known.done
    }
    if (!this.#admit(true)) return Promise.resolve()
    const node: ChildNode = { descriptor, paths: [path], variants: new Map(), done: Promise.resolve() }
    this.#children.set(descriptor.digest, node)
    node.done = this.#judgeChild(node, depth)
    return node.done
  }

  async #judgeChild(node: ChildNode, depth: number): Promise<void> {
    const { descriptor, paths } = node
    const lookup = await this.#lookupManifest(descriptor.digest)
    this.#stats.manifestsChecked++
    if (lookup.status !== 'found') {
      if (entryKind(descriptor.mediaType) === 'either' && notAManifest(lookup)) await this.#judgeEntryBlob(node)
      // An entry that says it is a manifest, at a digest the registry holds only as a blob: no
      // client can pull it as the manifest the entry promises.
      else if (lookup.status === 'failed' && notAManifest(lookup) && (await this.#lookupBlob(descriptor.digest)).status === 'found') this.#findings.push({ kind: 'child-missing', paths, descriptor })
      else this.#recordAbsence(lookup, paths, descriptor, 'child-missing')
      return
    }
    const found = lookup.value
    this.#present.push({ paths, descriptor })
    for (const { descriptor: named, paths: at } of [{ descriptor, paths }, ...node.variants.values()]) {
      if (found.size !== named.size) this.#findings.push({ kind: 'size-mismatch', paths: at, descriptor: named, role: 'child', actual: found.size })
      if (named.mediaType !== '' && found.mediaType !== named.mediaType) this.#findings.push({ kind: 'media-type-mismatch', paths: at, descriptor: named, actual: found.mediaType })
    }
    const child = found.manifest
    if (child === undefined) {
      if (found.problem !== undefined) this.#findings.push({ kind: 'child-unreadable', paths, descriptor, problem: found.problem })
      return
    }
    if (child.kind === 'index') {
      if (depth + 1 > this.#in.limits.maxDepth) {
        this.#findings.push({ kind: 'too-deep', paths, descriptor, limit: this.#in.limits.maxDepth })
        return
      }
      await this.#visitIndex(child, paths[0]!.chain, depth + 1)
    } else if (child.kind === 'image') {
      await this.#visitImage(child, paths)
    }
  }

  async #visitImage(image: ImageManifest, paths: readonly GraphPath[]): Promise<void> {
    const claims = this.#claimedPlatforms(image, paths)
    await Promise.all([
      claims === undefined ? this.#visitBlob(image.config, 'config', paths) : this.#visitConfig(image.config, paths, claims),
      // Only non-distributable media types may be absent; `urls` on an ordinary layer is a
      // mirror, and the registry stores the layer all the same.
      ...image.layers.map((d, layerIndex) => (isNonDistributable(d.mediaType) ? undefined : this.#visitBlob(d, 'layer', paths, layerIndex))),
    ])
  }

  /**
   * Platform truth: the entries naming an image say what its config says. Only images are
   * compared: attestations (unknown/unknown entries or configs), artifacts (an artifactType, or
   * a config of another type, the empty one included), cache entries and entries without a
   * platform are not platforms of their own.
   */
  #claimedPlatforms(image: ImageManifest, paths: readonly GraphPath[]): Map<string, PlatformClaim> | undefined {
    if (this.#in.source.imageConfig === undefined || !IMAGE_CONFIG_TYPES.has(image.config.mediaType)) return undefined
    const byEntry = new Map<string, PlatformClaim>()
    for (const path of paths) {
      const descriptor = path.chain.at(-1)
      const entry = descriptor?.platform
      if (descriptor === undefined || entry === undefined || isAttestationPlatform(entry) || descriptor.artifactType !== undefined) continue
      const key = platformKey(entry)
      const same = byEntry.get(key)
      if (same === undefined) byEntry.set(key, { entry, descriptor, paths: [path] })
      else same.paths.push(path)
    }
    return byEntry.size === 0 ? undefined : byEntry
  }

  /** An image config read whole (GET instead of HEAD, so no dearer): it exists, and says what the image is. */
  async #visitConfig(descriptor: Descriptor, paths: readonly GraphPath[], claims: Map<string, PlatformClaim>): Promise<void> {
    if (!this.#admit(!this.#blobs.has(descriptor.digest))) return
    const digest = descriptor.digest
    let pending = this.#configs.get(digest)
    if (pending === undefined) {
      const source = this.#in.source
      pending = this.#limit(() => (this.#stopped ? Promise.resolve(STOPPED) : source.imageConfig!(this.#in.repository, digest, this.#ctx, MAX_CONFIG_BYTES)))
      this.#configs.set(digest, pending)
      if (!this.#blobs.has(digest)) {
        this.#stats.blobsChecked++
        this.#blobs.set(
          digest,
          pending.then((read) => {
            if (read.status === 'found') return { status: 'found', value: { size: read.value.length } }
            // A config too large to read is not judged, but must still exist.
            if (read.status === 'failed' && read.reason.startsWith('blob larger than')) return this.#limit(() => source.blob(this.#in.repository, digest, this.#ctx))
            return read
          }),
        )
      }
    }
    this.#judgeBlob(await this.#blobs.get(digest)!, descriptor, 'config', paths)
    const lookup = await pending
    if (lookup.status !== 'found') return
    let config: Platform | undefined
    try {
      config = parsePlatform(JSON.parse(lookup.value.toString('utf8')))
    } catch {
      return // a config that is not JSON is not judged here
    }
    // The legacy attestation form: an image config saying unknown.
    if (config === undefined || config.os === 'unknown' || config.architecture === 'unknown') return
    for (const { entry, descriptor: named, paths: at } of claims.values()) {
      if (platformsDisagree(entry, config)) this.#findings.push({ kind: 'platform-mismatch', paths: at, descriptor: named, entry, image: config })
    }
  }

  /** An index entry that is no manifest of the repository: a blob of it, or missing. */
  async #judgeEntryBlob(node: ChildNode): Promise<void> {
    const lookup = await this.#lookupBlob(node.descriptor.digest)
    for (const { descriptor, paths } of [node, ...node.variants.values()]) {
      // Non-distributable content lives at its `urls`, not in the registry (image-spec layer.md).
      if (lookup.status === 'missing' && isNonDistributable(descriptor.mediaType)) continue
      // An entry that names no type says nothing of what it should be: a missing child.
      if (lookup.status === 'missing' && descriptor.mediaType === '') this.#findings.push({ kind: 'child-missing', paths, descriptor })
      else this.#judgeBlob(lookup, descriptor, 'entry', paths)
    }
  }

  /** A blob named at `paths` (its parent's places). */
  async #visitBlob(descriptor: Descriptor, role: BlobRole, paths: readonly GraphPath[], layerIndex?: number): Promise<void> {
    if (!this.#admit(!this.#blobs.has(descriptor.digest))) return
    this.#judgeBlob(await this.#lookupBlob(descriptor.digest), descriptor, role, paths, layerIndex)
  }

  #judgeBlob(lookup: ContentLookup<BlobContent>, descriptor: Descriptor, role: BlobRole, paths: readonly GraphPath[], layerIndex?: number): void {
    if (lookup.status === 'found') {
      if (lookup.value.size !== undefined && lookup.value.size !== descriptor.size) {
        this.#findings.push({ kind: 'size-mismatch', paths, descriptor, role, actual: lookup.value.size })
      }
    } else if (lookup.status === 'missing') {
      this.#findings.push(layerIndex === undefined ? { kind: 'blob-missing', paths, descriptor, role } : { kind: 'blob-missing', paths, descriptor, role, layerIndex })
    } else {
      this.#recordAbsence(lookup, paths, descriptor, 'blob-missing')
    }
  }

  #recordAbsence(lookup: Exclude<ContentLookup<unknown>, { status: 'found' }>, paths: readonly GraphPath[], descriptor: Descriptor, missingKind: 'child-missing' | 'blob-missing'): void {
    if (lookup.status === 'missing' && missingKind === 'child-missing') this.#findings.push({ kind: 'child-missing', paths, descriptor })
    else if (lookup.status === 'denied') {
      this.#findings.push({ kind: 'denied', paths, descriptor, httpStatus: lookup.httpStatus })
      // These credentials cannot read the repository: the registry must answer the push
      // itself, so looking further would only probe on the client's behalf.
      this.#stopped = true
    } else if (lookup.status === 'failed') this.#findings.push({ kind: 'lookup-failed', paths, descriptor, reason: lookup.reason })
  }

  /**
   * Entries nothing tells apart. image-index.md allows one platform several times: gzip and
   * zstd variants (told apart by annotations), or os.features / features / os.version.
   */
  #findDuplicateEntries(index: IndexManifest, chain: readonly Descriptor[]): void {
    const seen = new Map<string, Descriptor>()
    let reported = 0
    for (const d of index.manifests) {
      if (d.platform === undefined || isAttestationPlatform(d.platform)) continue
      const key = JSON.stringify([platformKey(d.platform), d.mediaType, d.artifactType ?? '', Object.entries(d.annotations ?? {}).sort()])
      const first = seen.get(key)
      if (first === undefined) seen.set(key, d)
      // One warning per index says enough; a flood of them says nothing more.
      else if (reported++ === 0) this.#findings.push({ kind: 'duplicate-entry', path: { chain }, descriptors: [first, d] })
    }
  }

  /**
   * Required platforms, from the pushed index's own entries: no lookup needed. Attestations
   * and artifacts are not a platform; an entry counts by what it says (a mislabelled one is
   * reported as such).
   */
  #findMissingPlatforms(entries: readonly Descriptor[]): void {
    const required = this.#in.requiredPlatforms ?? []
    if (required.length === 0) return
    const platforms = entries.flatMap((d) => (d.platform === undefined || isAttestationPlatform(d.platform) || d.artifactType !== undefined ? [] : [d.platform]))
    const missing = required.filter((spec) => {
      const wanted = parsePlatformSpec(spec)
      return wanted !== undefined && !platforms.some((p) => meetsPlatform(p, wanted))
    })
    if (missing.length > 0) this.#findings.push({ kind: 'platform-missing', missing, present: [...new Set(platforms.map((p) => formatPlatform(p)))] })
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
      this.#stats.blobsChecked++
      pending = this.#limit(() => (this.#stopped ? Promise.resolve(STOPPED) : this.#in.source.blob(this.#in.repository, digest, this.#ctx)))
      this.#blobs.set(digest, pending)
    }
    return pending
  }
}
