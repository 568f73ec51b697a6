import { MediaType } from './media-type.js'
import { parseMediaType } from './mime.js'

// Which of the registry's manifest handlers a PUT reaches, decided exactly as distribution
// 2.8.2 decides it (distribution.UnmarshalManifest): the Content-Type read by Go's
// mime.ParseMediaType (mime.ts), then looked up among the media types the schema1, schema2,
// ocischema and manifestlist packages register. A type with no handler of its own, an empty
// header and application/json all reach schema1's handler (it is registered for "" as the
// default), which refuses anything but a signed schema 1 manifest; a header Go cannot parse
// is refused outright (400 MANIFEST_INVALID). So a body is stored as a list or index only
// when this reading names one; the proxy decides "is this a list" from the same reading.

export type ManifestPutReading =
  /** Bytes no client sends: the proxy refuses the PUT before reading anything else. */
  | { readonly kind: 'odd'; readonly reason: string }
  /** manifestlist's handlers: a Docker manifest list or an OCI image index. */
  | { readonly kind: 'index'; readonly mediaType: string }
  /** schema2's or ocischema's handler: an image manifest (the registry checks its blobs itself). */
  | { readonly kind: 'image'; readonly mediaType: string }
  /**
   * No handler of its own: the registry falls back to schema 1 (or refuses the header). A
   * registry that reads the body's own mediaType instead would store a list here, so the body
   * decides for the proxy.
   */
  | { readonly kind: 'fallback'; readonly mediaType: string; readonly error?: string }

const HANDLERS: ReadonlyMap<string, 'index' | 'image'> = new Map([
  [MediaType.DockerManifestList, 'index'],
  [MediaType.OciIndex, 'index'],
  [MediaType.DockerManifest, 'image'],
  [MediaType.OciManifest, 'image'],
])

/**
 * The first byte of a header value that no client sends in a Content-Type: outside printable
 * ASCII (tab aside, which HTTP allows around and between parameters). Node hands header bytes
 * over as latin1, one char per byte.
 */
export function oddByte(value: string): { readonly at: number; readonly byte: number } | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if ((c < 0x20 && c !== 0x09) || c >= 0x7f) return { at: i, byte: c }
  }
  return undefined
}

/** A header value with every byte outside printable ASCII written \xNN, cut to 120 characters. */
export function printableHeader(value: string): string {
  const shown = value.length > 120 ? `${value.slice(0, 120)}…` : value
  return shown.replace(/[^\x20-\x7e]/g, (c) => (c === '…' ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))
}

/** How the registry reads a manifest PUT's Content-Type (Node's latin1 string of the header bytes). */
export function readManifestPutContentType(header: string | undefined): ManifestPutReading {
  const value = header ?? ''
  const odd = oddByte(value)
  if (odd !== undefined) {
    const reading = parseMediaType(value)
    const registry = 'error' in reading || reading.mediaType === '' ? '' : `; the registry would read it as "${printableHeader(reading.mediaType)}"`
    return {
      kind: 'odd',
      reason: `the Content-Type "${printableHeader(value)}" has byte 0x${odd.byte.toString(16).padStart(2, '0')} at offset ${odd.at}, outside printable ASCII${registry}. Fix: send the media type as plain ASCII, e.g. ${MediaType.OciIndex}`,
    }
  }
  // distribution passes "" without parsing it: schema1's default handler.
  if (value === '') return { kind: 'fallback', mediaType: '' }
  const reading = parseMediaType(value)
  if ('error' in reading) return { kind: 'fallback', mediaType: reading.mediaType, error: reading.error }
  const handler = HANDLERS.get(reading.mediaType)
  return handler === undefined ? { kind: 'fallback', mediaType: reading.mediaType } : { kind: handler, mediaType: reading.mediaType }
}
