import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

// Images and indexes with real digests, without a daemon: a layer is a one-file tar,
// gzipped deterministically; a config names the platform; a manifest names both.

export type Format = 'oci' | 'docker'

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeign: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const

export interface PlatformSpec {
  readonly os: string
  readonly architecture: string
  readonly variant?: string
}

export interface Blob {
  readonly bytes: Buffer
  readonly digest: string
  readonly mediaType: string
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: { os: string; architecture: string; variant?: string }
  urls?: string[]
  annotations?: Record<string, string>
}

export interface BuiltImage {
  readonly format: Format
  readonly platform: PlatformSpec
  readonly config: Blob
  readonly layers: readonly Blob[]
  readonly manifest: Blob
  /** Descriptor of the manifest as an index entry, with its platform. */
  readonly descriptor: Descriptor
}

export interface BuiltIndex {
  readonly format: Format
  readonly manifest: Blob
  readonly children: readonly (BuiltImage | BuiltIndex)[]
  readonly descriptor: Descriptor
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

export function blob(bytes: Buffer, mediaType: string): Blob {
  return { bytes, digest: sha256(bytes), mediaType }
}

/** A POSIX tar holding one regular file, with fixed metadata so the bytes are reproducible. */
export function tarOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512)
  header.write(name.slice(0, 99), 0, 'utf8')
  header.write('0000644\0', 100)
  header.write('0000000\0', 108)
  header.write('0000000\0', 116)
  header.write(content.length.toString(8).padStart(11, '0') + '\0', 124)
  header.write('00000000000\0', 136)
  header.write('        ', 148)
  header.write('0', 156)
  header.write('ustar\0', 257)
  header.write('00', 263)
  let sum = 0
  for (const b of header) sum += b
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512)
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)])
}

export interface ImageSpec {
  readonly platform: PlatformSpec
  /** Makes the content unique: a rebuild is the same spec with another seed. */
  readonly seed: string
  readonly format?: Format
  readonly layerCount?: number
  /** Extra bytes per layer (incompressible), for size-sensitive tests. */
  readonly layerBytes?: number
  /** Layers listed in the manifest but not pushed (foreign / non-distributable). */
  readonly foreignLayer?: boolean
  /** `urls` on every ordinary layer (a mirror; the registry still stores the layer). */
  readonly layerUrls?: readonly string[]
}

export function buildImage(spec: ImageSpec): BuiltImage {
  const format = spec.format ?? 'oci'
  const layers: Blob[] = []
  for (let i = 0; i < (spec.layerCount ?? 1); i++) {
    const filler = spec.layerBytes === undefined ? Buffer.alloc(0) : pseudoRandom(`${spec.seed}/${i}`, spec.layerBytes)
    const content = Buffer.concat([Buffer.from(`${spec.seed} layer ${i} ${spec.platform.os}/${spec.platform.architecture}\n`), filler])
    layers.push(blob(gzipSync(tarOneFile(`file-${i}.txt`, content), { level: 6 }), format === 'oci' ? MT.ociLayer : MT.dockerLayer))
  }
  const diffIds = layers.map((l) => sha256(Buffer.from(l.bytes.length.toString())))
  const configDoc = {
    architecture: spec.platform.architecture,
    os: spec.platform.os,
    ...(spec.platform.variant === undefined ? {} : { variant: spec.platform.variant }),
    config: { Labels: { seed: spec.seed } },
    rootfs: { type: 'layers', diff_ids: diffIds },
  }
  const config = blob(Buffer.from(JSON.stringify(configDoc)), format === 'oci' ? MT.ociConfig : MT.dockerConfig)
  const layerDescriptors: Descriptor[] = layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length, ...(spec.layerUrls === undefined ? {} : { urls: [...spec.layerUrls] }) }))
  if (spec.foreignLayer === true) {
    const foreign = Buffer.from(`foreign ${spec.seed}`)
    layerDescriptors.push({
      mediaType: format === 'oci' ? MT.ociNondistributable : MT.dockerForeign,
      digest: sha256(foreign),
      size: foreign.length,
      urls: ['https://example.invalid/foreign-layer'],
    })
  }
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MT.ociManifest : MT.dockerManifest,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
    layers: layerDescriptors,
  }
  const manifest = blob(Buffer.from(JSON.stringify(manifestDoc)), manifestDoc.mediaType)
  return {
    format,
    platform: spec.platform,
    config,
    layers,
    manifest,
    descriptor: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length, platform: { ...spec.platform } },
  }
}

export interface IndexSpec {
  readonly format?: Format
  /** Entries beyond the children's own descriptors (attestations, broken ones). */
  readonly extraEntries?: readonly Descriptor[]
  readonly subject?: Descriptor
  readonly platform?: PlatformSpec
}

export function buildIndex(children: readonly (BuiltImage | BuiltIndex)[], spec: IndexSpec = {}): BuiltIndex {
  const format = spec.format ?? 'oci'
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MT.ociIndex : MT.dockerList,
    manifests: [...children.map((c) => c.descriptor), ...(spec.extraEntries ?? [])],
  }
  if (spec.subject !== undefined) doc['subject'] = spec.subject
  const manifest = blob(Buffer.from(JSON.stringify(doc)), doc['mediaType'] as string)
  const descriptor: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length }
  if (spec.platform !== undefined) descriptor.platform = { ...spec.platform }
  return { format, manifest, children, descriptor }
}

/** Every blob and child manifest an image or index needs, children first. */
export function contentsOf(item: BuiltImage | BuiltIndex): { blobs: Blob[]; manifests: Blob[] } {
  if ('layers' in item) return { blobs: [item.config, ...item.layers], manifests: [item.manifest] }
  const blobs: Blob[] = []
  const manifests: Blob[] = []
  for (const child of item.children) {
    const c = contentsOf(child)
    blobs.push(...c.blobs)
    manifests.push(...c.manifests)
  }
  manifests.push(item.manifest)
  return { blobs, manifests }
}

/** An OCI image layout (image-spec image-layout.md) that skopeo/buildah read as oci:DIR:ref. */
export function writeOciLayout(dir: string, root: BuiltImage | BuiltIndex, refName: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true })
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  const { blobs, manifests } = contentsOf(root)
  for (const b of [...blobs, ...manifests]) writeFileSync(join(dir, 'blobs', 'sha256', b.digest.slice(7)), b.bytes)
  const entry = { ...root.descriptor, annotations: { 'org.opencontainers.image.ref.name': refName } }
  delete (entry as Descriptor).platform
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry] }))
}

/** Deterministic incompressible bytes. */
export function pseudoRandom(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length)
  let block = createHash('sha256').update(seed).digest()
  for (let off = 0; off < length; off += block.length) {
    block.copy(out, off, 0, Math.min(block.length, length - off))
    block = createHash('sha256').update(block).digest()
  }
  return out
}

/** Writes `root` as an OCI layout in a fresh temp dir and returns its `oci:DIR:ref` name. */
export function ociLayoutRef(root: BuiltImage | BuiltIndex, ref = 'v1'): string {
  const dir = mkdtempSync(join(tmpdir(), 'mg-layout-'))
  writeOciLayout(dir, root, ref)
  return `oci:${dir}:${ref}`
}

/** A two-platform index (linux/amd64, linux/arm64/v8) built from `seed`. */
export function twoPlatformIndex(seed: string, format: Format = 'oci'): { amd64: BuiltImage; arm64: BuiltImage; index: BuiltIndex } {
  const amd64 = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed, format })
  const arm64 = buildImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, seed, format })
  return { amd64, arm64, index: buildIndex([amd64, arm64], { format }) }
}
