import { type Digest, parseDigest } from './digest.js'

// Repository names and tags, per OCI distribution-spec "Pulling manifests":
//   <name>      [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//   <reference> a tag [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}, or a digest
// distribution caps the name at 255 characters (reference.NameTotalLengthMax).

const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/
export const NAME_MAX_LENGTH = 255

export function isRepositoryName(value: string): boolean {
  return value.length <= NAME_MAX_LENGTH && NAME.test(value)
}

export function isTag(value: string): boolean {
  return TAG.test(value)
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest }

export function parseReference(value: string): Reference | undefined {
  if (isTag(value)) return { kind: 'tag', tag: value }
  const parsed = parseDigest(value)
  return 'digest' in parsed ? { kind: 'digest', digest: parsed.digest } : undefined
}

/** What a `/v2/…` path addresses, as far as the proxy needs to know. */
export type RegistryPath =
  | { kind: 'manifest'; name: string; reference: Reference }
  | { kind: 'blob'; name: string; digest: Digest }
  | { kind: 'upload'; name: string; session: string | undefined }
  | { kind: 'tags'; name: string }
  /** A manifest path whose name or reference breaks the grammar: never stored, refused on PUT. */
  | { kind: 'bad-manifest'; problem: 'name' | 'digest' | 'tag' }
  | { kind: 'other' }
  | { kind: 'invalid'; reason: string }

const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/]+)$/
const UPLOAD_PATH = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/
const BLOB_PATH = /^\/v2\/(.+)\/blobs\/([^/]+)$/
const TAGS_PATH = /^\/v2\/(.+)\/tags\/list$/
// Escapes that change how a path splits into segments. A registry that decodes them would
// see a different route than the one the proxy classified, so they are refused outright.
const SEGMENT_ESCAPES = /%2f|%5c|%2e/i

/**
 * Classifies the path part of a request URL (no query). Names and references that do not
 * follow the grammar are `other`: the registry answers them itself, and they cannot store
 * anything. Only tricks that could make the proxy and the registry disagree are `invalid`.
 */
export function parseRegistryPath(rawPath: string): RegistryPath {
  if (!rawPath.startsWith('/v2/')) return { kind: 'other' }
  let path = rawPath
  if (rawPath.includes('%')) {
    if (SEGMENT_ESCAPES.test(rawPath)) return { kind: 'invalid', reason: 'percent-encoded "/", "\\" or "." in the path' }
    try {
      path = decodeURIComponent(rawPath)
    } catch {
      return { kind: 'invalid', reason: 'malformed percent-encoding in the path' }
    }
  }
  if (path.includes('\\') || /(?:^|\/)\.\.?(?:\/|$)/.test(path)) {
    return { kind: 'invalid', reason: 'dot segments or backslashes in the path' }
  }
  if (path.length > 4 + NAME_MAX_LENGTH + 200) return { kind: 'invalid', reason: 'path too long' }

  let m = MANIFEST_PATH.exec(path)
  if (m !== null) {
    const name = m[1] as string
    const raw = m[2] as string
    const reference = parseReference(raw)
    if (!isRepositoryName(name)) return { kind: 'bad-manifest', problem: 'name' }
    if (reference === undefined) return { kind: 'bad-manifest', problem: raw.includes(':') ? 'digest' : 'tag' }
    return { kind: 'manifest', name, reference }
  }
  m = UPLOAD_PATH.exec(path)
  if (m !== null) {
    const name = m[1] as string
    return isRepositoryName(name) ? { kind: 'upload', name, session: m[2] === '' ? undefined : m[2] } : { kind: 'other' }
  }
  m = BLOB_PATH.exec(path)
  if (m !== null) {
    const name = m[1] as string
    const digest = parseDigest(m[2])
    return isRepositoryName(name) && 'digest' in digest ? { kind: 'blob', name, digest: digest.digest } : { kind: 'other' }
  }
  m = TAGS_PATH.exec(path)
  if (m !== null && isRepositoryName(m[1] as string)) return { kind: 'tags', name: m[1] as string }
  return { kind: 'other' }
}
