import { parseMediaType } from './mime.js'

// The closed table of media types the proxy understands, and the predicates the rest of the
// code uses instead of comparing strings. Sources: OCI image-spec media-types.md and the
// Docker image manifest v2 schema 2 spec.

export const MediaType = {
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerForeignLayerTar: 'application/vnd.docker.image.rootfs.foreign.diff.tar',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
} as const

export type KnownMediaType = (typeof MediaType)[keyof typeof MediaType]

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.DockerManifestList, MediaType.OciIndex])

const IMAGE_MANIFEST_TYPES: ReadonlySet<string> = new Set([
  MediaType.DockerManifest,
  MediaType.OciManifest,
])

const LEGACY_MANIFEST_TYPES: ReadonlySet<string> = new Set([
  MediaType.DockerManifestV1,
  MediaType.DockerManifestV1Signed,
])

// Layers a registry is not expected to hold (image-spec layer.md "non-distributable", Docker
// "foreign" layers): they live at the descriptor's `urls`, so their absence is not a fault.
const NON_DISTRIBUTABLE_TYPES: ReadonlySet<string> = new Set([
  MediaType.DockerForeignLayer,
  MediaType.DockerForeignLayerTar,
  MediaType.OciLayerNondistributable,
  MediaType.OciLayerNondistributableGzip,
  MediaType.OciLayerNondistributableZstd,
])

/** Manifest list (Docker) or image index (OCI): the bodies the proxy validates. */
export function isIndex(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_TYPES.has(mediaType)
}

/** A single-platform image manifest, Docker schema 2 or OCI. */
export function isImageManifest(mediaType: string | undefined): boolean {
  return mediaType !== undefined && IMAGE_MANIFEST_TYPES.has(mediaType)
}

/** Any manifest media type a registry stores under /manifests/. */
export function isManifest(mediaType: string | undefined): boolean {
  return (
    mediaType !== undefined &&
    (INDEX_TYPES.has(mediaType) || IMAGE_MANIFEST_TYPES.has(mediaType) || LEGACY_MANIFEST_TYPES.has(mediaType))
  )
}

export function isNonDistributable(mediaType: string | undefined): boolean {
  return mediaType !== undefined && NON_DISTRIBUTABLE_TYPES.has(mediaType)
}

/**
 * Content-Type values that say nothing about the manifest kind, so the body's own
 * `mediaType` decides (OCI distribution-spec allows the field to carry it).
 */
export function isGenericContentType(mediaType: string | undefined): boolean {
  return mediaType === undefined || mediaType === '' || mediaType === 'application/json' || mediaType === 'application/octet-stream'
}

/**
 * Accept header for manifest lookups. distribution answers 404 for an OCI manifest unless
 * the OCI types are listed, so every manifest type is named.
 */
export const MANIFEST_ACCEPT: string = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
  MediaType.DockerManifestV1Signed,
  MediaType.DockerManifestV1,
].join(', ')

/**
 * The media type of a Content-Type header value as Go reads it (mime.ts): parameters dropped,
 * lower-cased; undefined when there is none. For what a manifest PUT means to the registry,
 * see manifest-handler.ts.
 */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined
  const bare = parseMediaType(contentType).mediaType
  return bare === '' ? undefined : bare
}

/** Human name of the kind, used in messages. */
export function describeMediaType(mediaType: string | undefined): string {
  if (mediaType === MediaType.DockerManifestList) return 'Docker manifest list'
  if (mediaType === MediaType.OciIndex) return 'OCI image index'
  if (mediaType === MediaType.DockerManifest) return 'Docker image manifest'
  if (mediaType === MediaType.OciManifest) return 'OCI image manifest'
  return mediaType ?? 'unknown media type'
}
