import { type Digest, parseDigest } from './digest.js'
import { type Platform, parsePlatform } from './platform.js'

// Content descriptor (image-spec descriptor.md).

export interface Descriptor {
  readonly mediaType: string
  readonly digest: Digest
  readonly size: number
  readonly urls?: readonly string[]
  readonly platform?: Platform
  readonly artifactType?: string
  readonly annotations?: Readonly<Record<string, string>>
}

/** Reads a descriptor; on failure returns a sentence naming the field at `where`. */
export function parseDescriptor(value: unknown, where: string): Descriptor | { problem: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: `${where} is not an object` }
  const v = value as Record<string, unknown>
  if (typeof v['mediaType'] !== 'string' || v['mediaType'] === '') return { problem: `${where}.mediaType is missing` }
  const digest = parseDigest(v['digest'])
  if ('problem' in digest) return { problem: `${where}.digest is not a valid digest (${digest.problem})` }
  const size = v['size']
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    return { problem: `${where}.size must be a non-negative integer` }
  }
  const descriptor: {
    mediaType: string
    digest: Digest
    size: number
    urls?: string[]
    platform?: Platform
    artifactType?: string
    annotations?: Record<string, string>
  } = { mediaType: v['mediaType'], digest: digest.digest, size }
  if (v['urls'] !== undefined) {
    if (!Array.isArray(v['urls']) || !v['urls'].every((u) => typeof u === 'string')) {
      return { problem: `${where}.urls must be an array of strings` }
    }
    descriptor.urls = v['urls'] as string[]
  }
  if (v['platform'] !== undefined) {
    const platform = parsePlatform(v['platform'])
    if (platform === undefined) return { problem: `${where}.platform needs string "architecture" and "os"` }
    descriptor.platform = platform
  }
  if (typeof v['artifactType'] === 'string') descriptor.artifactType = v['artifactType']
  if (typeof v['annotations'] === 'object' && v['annotations'] !== null) {
    descriptor.annotations = v['annotations'] as Record<string, string>
  }
  return descriptor
}
