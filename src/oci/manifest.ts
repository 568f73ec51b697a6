import { DESCRIPTOR_SCHEMA, type Descriptor, descriptorFrom } from './descriptor.js'
import { type Digest, digestOf } from './digest.js'
import { ANY, decodeStruct, GoDecodeProblem, type GoStruct, INT64, MAP, STRING, type Schema, struct, structs } from './go-struct.js'
import { parseJsonTree } from './json-tree.js'
import { isGenericContentType, isImageManifest, isIndex, MediaType } from './media-type.js'

// A manifest as received: the raw bytes stay the truth (their digest is the manifest's
// identity, and exactly these bytes are forwarded); the parsed view is only for reading, and
// it is read the way the registry's Go decoder reads it (go-struct.ts): as leniently where
// that changes no verdict (null or missing arrays are empty, unknown fields ignored), and
// strictly where it would (keys that Go folds into the same field are refused).

interface ManifestBase {
  readonly raw: Buffer
  readonly digest: Digest
  readonly mediaType: string
  readonly subject?: Descriptor
}

export interface IndexManifest extends ManifestBase {
  readonly kind: 'index'
  readonly manifests: readonly Descriptor[]
}

export interface ImageManifest extends ManifestBase {
  readonly kind: 'image'
  readonly config: Descriptor
  readonly layers: readonly Descriptor[]
}

/** A manifest kind the proxy does not look into (schema 1, artifacts). */
export interface OpaqueManifest extends ManifestBase {
  readonly kind: 'opaque'
}

export type Manifest = IndexManifest | ImageManifest | OpaqueManifest

export interface ManifestProblem {
  readonly problem: string
}

// What decides the kind. The other fields are only interface{} here: their types are
// checked once the kind is known.
const HEAD_SCHEMA: Schema = { mediaType: STRING, manifests: ANY, layers: ANY, config: ANY }

const COMMON: Schema = {
  schemaVersion: INT64,
  mediaType: STRING,
  artifactType: STRING,
  subject: struct(DESCRIPTOR_SCHEMA),
  annotations: MAP,
}
export const INDEX_SCHEMA: Schema = { ...COMMON, manifests: structs(DESCRIPTOR_SCHEMA), config: ANY, layers: ANY }
export const IMAGE_SCHEMA: Schema = { ...COMMON, config: struct(DESCRIPTOR_SCHEMA), layers: structs(DESCRIPTOR_SCHEMA) }

/**
 * The media type a manifest PUT carries: the Content-Type when it names a type, else the
 * body's own `mediaType` (distribution-spec allows either to decide).
 */
export function effectiveMediaType(contentType: string | undefined, head: GoStruct): string | ManifestProblem {
  const declared = isGenericContentType(contentType) ? undefined : contentType
  const field = typeof head['mediaType'] === 'string' && head['mediaType'] !== '' ? head['mediaType'] : undefined
  if (declared !== undefined && field !== undefined && declared !== field) {
    return { problem: `Content-Type "${declared}" disagrees with the body's mediaType "${field}"` }
  }
  const chosen = declared ?? field
  if (chosen !== undefined) return chosen
  // Neither says: OCI image-spec lets mediaType be omitted, so the shape decides.
  if (head['manifests'] !== undefined) return MediaType.OciIndex
  if (head['layers'] !== undefined) return MediaType.OciManifest
  // Nothing marks it as a list or an image (schema 1, an artifact of some other kind): not
  // the proxy's to judge; the registry decides what it is.
  return ''
}

/** Parses manifest bytes; never throws for bad content. */
export function parseManifest(raw: Buffer, contentType: string | undefined): Manifest | ManifestProblem {
  const tree = parseJsonTree(raw)
  if ('problem' in tree) return tree
  try {
    const mediaType = effectiveMediaType(contentType, decodeStruct(tree.value, HEAD_SCHEMA, ''))
    if (typeof mediaType !== 'string') return mediaType
    const base: { raw: Buffer; digest: Digest; mediaType: string; subject?: Descriptor } = { raw, digest: digestOf(raw), mediaType }
    if (!isIndex(mediaType) && !isImageManifest(mediaType)) return { ...base, kind: 'opaque' }

    const doc = decodeStruct(tree.value, isIndex(mediaType) ? INDEX_SCHEMA : IMAGE_SCHEMA, '')
    if (doc['schemaVersion'] !== 2n) return { problem: 'schemaVersion must be 2' }
    // distribution ignores `subject`, and a pull never follows it: an unusable one is only dropped.
    const subject = doc['subject'] === undefined ? undefined : descriptorFrom(doc['subject'] as GoStruct, 'subject')
    if (subject !== undefined && !('problem' in subject)) base.subject = subject
    if (isIndex(mediaType)) {
      // distribution refuses an OCI index that also carries an image's fields (CVE-2021-41190).
      if (mediaType === MediaType.OciIndex && (doc['config'] !== undefined || doc['layers'] !== undefined)) {
        return { problem: 'an image index must not have "config" or "layers"' }
      }
      const manifests = descriptors(doc['manifests'], 'manifests')
      return 'problem' in manifests ? manifests : { ...base, kind: 'index', manifests }
    }
    const config = descriptorFrom((doc['config'] ?? {}) as GoStruct, 'config')
    if ('problem' in config) return config
    const layers = descriptors(doc['layers'], 'layers')
    return 'problem' in layers ? layers : { ...base, kind: 'image', config, layers }
  } catch (err) {
    if (err instanceof GoDecodeProblem) return { problem: err.message }
    throw err
  }
}

/** A Go slice of descriptors: null or missing is empty. */
function descriptors(value: unknown, where: string): Descriptor[] | ManifestProblem {
  const out: Descriptor[] = []
  for (const [i, fields] of ((value ?? []) as readonly GoStruct[]).entries()) {
    const d = descriptorFrom(fields, `${where}[${i}]`)
    if ('problem' in d) return d
    out.push(d)
  }
  return out
}
