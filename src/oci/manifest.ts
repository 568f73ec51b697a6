import { type Descriptor, parseDescriptor } from './descriptor.js'
import { type Digest, digestOf } from './digest.js'
import { isGenericContentType, isImageManifest, isIndex, MediaType } from './media-type.js'
import { parseStrictJson } from './strict-json.js'

// A manifest as received: the raw bytes stay the truth (their digest is the manifest's
// identity, and exactly these bytes are forwarded); the parsed view is only for reading.

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

/**
 * The media type a manifest PUT carries: the Content-Type when it names a type, else the
 * body's own `mediaType` (distribution-spec allows either to decide).
 */
export function effectiveMediaType(contentType: string | undefined, body: Record<string, unknown>): string | ManifestProblem {
  const declared = isGenericContentType(contentType) ? undefined : contentType
  const field = typeof body['mediaType'] === 'string' ? body['mediaType'] : undefined
  if (declared !== undefined && field !== undefined && declared !== field) {
    return { problem: `Content-Type "${declared}" disagrees with the body's mediaType "${field}"` }
  }
  const chosen = declared ?? field
  if (chosen !== undefined) return chosen
  // Neither says: OCI image-spec lets mediaType be omitted, so the shape decides.
  if (Array.isArray(body['manifests'])) return MediaType.OciIndex
  if (Array.isArray(body['layers'])) return MediaType.OciManifest
  // Nothing marks it as a list or an image (schema 1, an artifact of some other kind): not
  // the proxy's to judge; the registry decides what it is.
  return ''
}

/** Parses manifest bytes; never throws for bad content. */
export function parseManifest(raw: Buffer, contentType: string | undefined): Manifest | ManifestProblem {
  const json = parseStrictJson(raw)
  if ('problem' in json) return json
  const body = json.value
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { problem: 'body is not a JSON object' }
  const doc = body as Record<string, unknown>
  const mediaType = effectiveMediaType(contentType, doc)
  if (typeof mediaType !== 'string') return mediaType
  const digest = digestOf(raw)
  const base: { raw: Buffer; digest: Digest; mediaType: string; subject?: Descriptor } = { raw, digest, mediaType }

  if (!isIndex(mediaType) && !isImageManifest(mediaType)) return { ...base, kind: 'opaque' }
  if (doc['schemaVersion'] !== 2) return { problem: 'schemaVersion must be 2' }
  if (doc['subject'] !== undefined) {
    const subject = parseDescriptor(doc['subject'], 'subject')
    if ('problem' in subject) return subject
    base.subject = subject
  }

  if (isIndex(mediaType)) {
    if (!Array.isArray(doc['manifests'])) return { problem: 'manifests must be an array' }
    const manifests: Descriptor[] = []
    for (const [i, entry] of doc['manifests'].entries()) {
      const d = parseDescriptor(entry, `manifests[${i}]`)
      if ('problem' in d) return d
      manifests.push(d)
    }
    return { ...base, kind: 'index', manifests }
  }

  const config = parseDescriptor(doc['config'], 'config')
  if ('problem' in config) return config
  if (!Array.isArray(doc['layers'])) return { problem: 'layers must be an array' }
  const layers: Descriptor[] = []
  for (const [i, entry] of doc['layers'].entries()) {
    const d = parseDescriptor(entry, `layers[${i}]`)
    if ('problem' in d) return d
    layers.push(d)
  }
  return { ...base, kind: 'image', config, layers }
}

export function isManifestProblem(value: Manifest | ManifestProblem | string): value is ManifestProblem {
  return typeof value === 'object' && 'problem' in value
}
