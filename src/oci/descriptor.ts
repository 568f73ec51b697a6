import { type Digest, parseDigest } from './digest.js'
import { type GoStruct, INT64, MAP, STRING, STRINGS, type Schema, struct } from './go-struct.js'
import { type Platform, PLATFORM_SCHEMA, platformFrom } from './platform.js'

// Content descriptor (image-spec descriptor.md).

export interface Descriptor {
  /** Empty when the descriptor names none (the registry stores such entries). */
  readonly mediaType: string
  readonly digest: Digest
  readonly size: number
  readonly urls?: readonly string[]
  readonly platform?: Platform
  readonly artifactType?: string
  readonly annotations?: Readonly<Record<string, string>>
}

/** Every descriptor field a Go reader decodes (distribution's and image-spec's). */
export const DESCRIPTOR_SCHEMA: Schema = {
  mediaType: STRING,
  digest: STRING,
  size: INT64,
  urls: STRINGS,
  annotations: MAP,
  data: STRING,
  platform: struct(PLATFORM_SCHEMA),
  artifactType: STRING,
}

/** A decoded descriptor; on failure a sentence naming the field at `where`. */
export function descriptorFrom(fields: GoStruct, where: string): Descriptor | { problem: string } {
  const digest = parseDigest(fields['digest'] ?? '')
  if ('problem' in digest) return { problem: `${where}.digest is not a valid digest (${digest.problem})` }
  const size = fields['size'] ?? 0n
  // A negative size is a size no content has; one past 2^53 is one no registry holds.
  if (typeof size !== 'bigint' || size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { problem: `${where}.size must be a non-negative integer` }
  }
  const descriptor: {
    mediaType: string
    digest: Digest
    size: number
    urls?: readonly string[]
    platform?: Platform
    artifactType?: string
    annotations?: Readonly<Record<string, string>>
  } = { mediaType: typeof fields['mediaType'] === 'string' ? fields['mediaType'] : '', digest: digest.digest, size: Number(size) }
  const urls = fields['urls'] as readonly string[] | undefined
  if (urls !== undefined && urls.length > 0) descriptor.urls = urls
  const platform = fields['platform'] === undefined ? undefined : platformFrom(fields['platform'] as GoStruct)
  if (platform !== undefined) descriptor.platform = platform
  if (typeof fields['artifactType'] === 'string' && fields['artifactType'] !== '') descriptor.artifactType = fields['artifactType']
  if (fields['annotations'] !== undefined) descriptor.annotations = fields['annotations'] as Readonly<Record<string, string>>
  return descriptor
}
