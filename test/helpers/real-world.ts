import { type Blob, blob, buildImage, type BuiltImage, type Descriptor, MT, pseudoRandom, sha256 } from './oci-builder.js'

// Bodies shaped the way real tools write them, for the shapes the image builder does not
// make: BuildKit's registry cache, podman's zstd variants, Go structs with nil slices,
// artifacts, empty blobs. Each returns every blob and manifest to push, children first.

export interface Shape {
  /** Blobs to upload, in order. */
  readonly blobs: readonly Blob[]
  /** Child manifests to PUT by digest, in order. */
  readonly manifests: readonly Blob[]
  /** The list or index itself. */
  readonly list: Blob
}

export function json(doc: unknown, mediaType: string): Blob {
  return blob(Buffer.from(JSON.stringify(doc)), mediaType)
}

function descriptorOf(b: Blob, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType: b.mediaType, digest: b.digest, size: b.bytes.length, ...extra }
}

/**
 * `docker buildx build --cache-to type=registry,ref=…,image-manifest=false` (the long-time
 * default): an index whose entries are the cached layers and the cache config, all blobs.
 */
export function buildkitCache(seed: string, format: 'oci' | 'docker'): Shape {
  const layerType = format === 'oci' ? MT.ociLayer : MT.dockerLayer
  const layers = [0, 1, 2].map((i) => blob(pseudoRandom(`${seed}/cache/${i}`, 2048 + i), layerType))
  const cacheConfig = json(
    { layers: layers.map((l, i) => ({ blob: l.digest, parent: i - 1 })), records: [{ digest: sha256(Buffer.from(seed)), results: [{ layers: [0, 1, 2] }] }] },
    'application/vnd.buildkit.cacheconfig.v0',
  )
  const list = json(
    {
      schemaVersion: 2,
      mediaType: format === 'oci' ? MT.ociIndex : MT.dockerList,
      manifests: [
        ...layers.map((l) => descriptorOf(l, { annotations: { 'buildkit/createdat': '2024-05-01T10:00:00.000000000Z', 'containerd.io/uncompressed': sha256(l.bytes) } })),
        descriptorOf(cacheConfig),
      ],
    },
    format === 'oci' ? MT.ociIndex : MT.dockerList,
  )
  return { blobs: [...layers, cacheConfig], manifests: [], list }
}

/** A copy of `image` whose layers say zstd (podman/buildah `manifest push --add-compression zstd`). */
export function zstdVariant(image: BuiltImage): { image: BuiltImage; layers: Blob[] } {
  const layers = image.layers.map((l, i) => blob(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), pseudoRandom(`${l.digest}/zstd/${i}`, 512)]), MT.ociLayerZstd))
  const manifest = json(
    {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptorOf(image.config),
      layers: layers.map((l) => descriptorOf(l)),
    },
    MT.ociManifest,
  )
  return {
    layers,
    image: {
      ...image,
      layers,
      manifest,
      descriptor: { ...descriptorOf(manifest), platform: { ...image.platform }, annotations: { 'io.github.containers.compression.zstd': 'true' } },
    },
  }
}

/** An image manifest written from a Go struct with a nil slice: `"layers": null`, or no key at all. */
export function goNilLayers(seed: string, how: 'null' | 'omitted'): { config: Blob; manifest: Blob } {
  const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: null }, config: {} }, MT.ociConfig)
  const doc: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptorOf(config), annotations: { seed } }
  if (how === 'null') doc['layers'] = null
  return { config, manifest: json(doc, MT.ociManifest) }
}

/** An OCI artifact (a Helm chart, say): an image manifest with an artifact config and layer. */
export function artifact(seed: string, configType: string, layerType: string, subject?: Descriptor): { blobs: Blob[]; manifest: Blob } {
  const config = blob(Buffer.from(configType === MT.ociEmpty ? '{}' : JSON.stringify({ name: seed, version: '1.0.0' })), configType)
  const layer = blob(pseudoRandom(`${seed}/artifact`, 700), layerType)
  const doc: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptorOf(config), layers: [descriptorOf(layer)] }
  if (subject !== undefined) doc['subject'] = subject
  if (configType === MT.ociEmpty) doc['artifactType'] = 'application/vnd.example.sbom+json'
  return { blobs: [config, layer], manifest: json(doc, MT.ociManifest) }
}

/** The 0-byte blob, and an image using it as a layer (an empty layer some builders write). */
export function emptyLayerImage(seed: string): { empty: Blob; image: BuiltImage } {
  const base = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed })
  const empty = blob(Buffer.alloc(0), MT.ociLayer)
  const manifest = json({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptorOf(base.config), layers: [...base.layers.map((l) => descriptorOf(l)), descriptorOf(empty)] }, MT.ociManifest)
  return { empty, image: { ...base, layers: [...base.layers, empty], manifest, descriptor: { ...descriptorOf(manifest), platform: { ...base.platform } } } }
}
