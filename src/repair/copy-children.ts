import type { ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'
import type { Manifest } from '../oci/manifest.js'
import { isNonDistributable } from '../oci/media-type.js'
import { limiter } from '../validate/limiter.js'

// Repair by copying: a list names children that live in another repository of the same
// registry (the wrong-repository cause). Each child is copied into the target repository the
// way `docker manifest push` copies children — every blob mounted from its repository (or,
// when the registry will not mount it, streamed across), then the child manifest PUT by digest
// with its exact bytes — so the list itself can go upstream unchanged, with the digest the
// client computed. Only the client's own credentials are used: whatever the client could not
// copy itself, the proxy does not copy for it. All or nothing: the first failure stops the
// repair and the list is not forwarded (the copies made stay; they are content-addressed and
// harmless).

/** What a repair needs of the registry, always with the client's credentials. */
export interface CopySource {
  manifest(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<ManifestContent>>
  /** POST ?mount=&from=: mounted, or the upload session the registry opened instead. */
  mountBlob(repository: string, digest: Digest, from: string, ctx: LookupContext): Promise<ContentLookup<{ readonly mounted: true } | { readonly upload: string }>>
  /** Streams a blob from `from` into an open upload session of `repository`: the bytes copied. */
  streamBlob(from: string, digest: Digest, upload: string, ctx: LookupContext): Promise<ContentLookup<number>>
  putManifest(repository: string, manifest: Manifest, ctx: LookupContext): Promise<ContentLookup<true>>
}

export interface ChildToCopy {
  readonly digest: Digest
  /** The repository that holds it. */
  readonly from: string
}

export interface CopyLimits {
  readonly maxDepth: number
  /** Most distinct objects (manifests and blobs) copied in one repair. */
  readonly maxObjects: number
  readonly concurrency: number
  readonly timeoutMs: number
}

export interface CopiedBlob {
  readonly digest: Digest
  readonly how: 'mounted' | 'streamed'
  /** Bytes streamed across (0 for a mount). */
  readonly bytes: number
}

export interface RepairReport {
  /** Child manifests put into the target, with where each came from. */
  readonly children: readonly { readonly digest: Digest; readonly from: string }[]
  readonly blobs: readonly CopiedBlob[]
  readonly bytes: number
  readonly ms: number
  /** Why the repair stopped; undefined when every child was copied. */
  readonly failed?: string
}

export async function copyChildren(input: {
  readonly repository: string
  readonly children: readonly ChildToCopy[]
  readonly source: CopySource
  readonly limits: CopyLimits
  readonly ctx: LookupContext
}): Promise<RepairReport> {
  return new Repair(input.repository, input.source, input.limits, input.ctx).run(input.children)
}

class RepairFailure extends Error {}

class Repair {
  readonly #repository: string
  readonly #source: CopySource
  readonly #limits: CopyLimits
  readonly #ctx: LookupContext
  readonly #started = performance.now()
  readonly #children: { digest: Digest; from: string }[] = []
  readonly #blobs = new Map<Digest, Promise<CopiedBlob>>()
  readonly #manifests = new Map<Digest, Promise<void>>()
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>
  #objects = 0

  constructor(repository: string, source: CopySource, limits: CopyLimits, ctx: LookupContext) {
    this.#repository = repository
    this.#source = source
    this.#limits = limits
    this.#limit = limiter(limits.concurrency)
    const deadline = AbortSignal.timeout(limits.timeoutMs)
    this.#ctx = { ...ctx, signal: ctx.signal === undefined ? deadline : AbortSignal.any([deadline, ctx.signal]) }
  }

  async run(children: readonly ChildToCopy[]): Promise<RepairReport> {
    let failed: string | undefined
    try {
      await Promise.all(children.map((c) => this.#copyManifest(c.digest, c.from, 1, true)))
    } catch (err) {
      if (!(err instanceof RepairFailure)) throw err
      failed = this.#ctx.signal?.aborted === true ? `the copy took longer than ${this.#limits.timeoutMs} ms (validation.repairTimeoutMs)` : err.message
    }
    const blobs = await Promise.all([...this.#blobs.values()].map((p) => p.catch(() => undefined)))
    const copied = blobs.filter((b): b is CopiedBlob => b !== undefined)
    // In the list's order, whatever order the copies finished in.
    const done = new Set(this.#children.map((c) => c.digest))
    return {
      children: children.filter((c) => done.has(c.digest)).map((c) => ({ digest: c.digest, from: c.from })),
      blobs: copied,
      bytes: copied.reduce((n, b) => n + b.bytes, 0),
      ms: Math.round(performance.now() - this.#started),
      ...(failed === undefined ? {} : { failed }),
    }
  }

  /** Copies one manifest (and, first, everything it names) from `from` into the target. */
  #copyManifest(digest: Digest, from: string, depth: number, top: boolean): Promise<void> {
    let pending = this.#manifests.get(digest)
    if (pending === undefined) {
      this.#admit()
      pending = this.#doCopyManifest(digest, from, depth, top)
      this.#manifests.set(digest, pending)
    }
    return pending
  }

  async #doCopyManifest(digest: Digest, from: string, depth: number, top: boolean): Promise<void> {
    const found = await this.#limited(() => this.#source.manifest(from, digest, this.#ctx))
    const manifest = expect(found, `reading child ${digest} in ${from}`).manifest
    if (manifest === undefined || manifest.kind === 'opaque') throw new RepairFailure(`child ${digest} in ${from} is not a manifest manifest-guard can copy`)
    if (manifest.kind === 'index') {
      if (depth + 1 > this.#limits.maxDepth) throw new RepairFailure(`child ${digest} nests indexes deeper than ${this.#limits.maxDepth} levels`)
      await Promise.all(manifest.manifests.map((d) => this.#copyManifest(d.digest, from, depth + 1, false)))
    } else {
      const blobs = [manifest.config, ...manifest.layers.filter((l) => !isNonDistributable(l.mediaType))]
      await Promise.all(blobs.map((b) => this.#copyBlob(b.digest, from)))
    }
    expect(await this.#limited(() => this.#source.putManifest(this.#repository, manifest, this.#ctx)), `putting child ${digest} into ${this.#repository}`)
    if (top) this.#children.push({ digest, from })
  }

  #copyBlob(digest: Digest, from: string): Promise<CopiedBlob> {
    let pending = this.#blobs.get(digest)
    if (pending === undefined) {
      this.#admit()
      pending = this.#limited(async () => {
        const mount = expect(await this.#source.mountBlob(this.#repository, digest, from, this.#ctx), `mounting blob ${digest} from ${from}`)
        if ('mounted' in mount) return { digest, how: 'mounted' as const, bytes: 0 }
        // The registry would not mount it (another storage, a policy): stream it across.
        const bytes = expect(await this.#source.streamBlob(from, digest, mount.upload, this.#ctx), `copying blob ${digest} from ${from}`)
        return { digest, how: 'streamed' as const, bytes }
      })
      this.#blobs.set(digest, pending)
    }
    return pending
  }

  #admit(): void {
    if (++this.#objects > this.#limits.maxObjects) throw new RepairFailure(`more than ${this.#limits.maxObjects} objects to copy (validation.maxDescriptors)`)
  }

  /** At most `concurrency` registry operations at once, none after the deadline. */
  #limited<T>(task: () => Promise<T>): Promise<T> {
    return this.#limit(async () => {
      if (this.#ctx.signal?.aborted === true) throw new RepairFailure('the time for the repair ran out')
      return task()
    })
  }
}

function expect<T>(answer: ContentLookup<T>, what: string): T {
  if (answer.status === 'found') return answer.value
  if (answer.status === 'missing') throw new RepairFailure(`${what}: not found`)
  if (answer.status === 'denied') throw new RepairFailure(`${what}: the registry refused your credentials (${answer.httpStatus})`)
  throw new RepairFailure(`${what}: ${answer.reason}`)
}
