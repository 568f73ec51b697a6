import { type GoStruct, STRING, STRINGS, type Schema } from './go-struct.js'

// Platform of an index entry (image-spec image-index.md "platform").

export interface Platform {
  readonly architecture: string
  readonly os: string
  readonly variant?: string
  readonly osVersion?: string
  readonly osFeatures?: readonly string[]
  readonly features?: readonly string[]
}

/** The platform object's fields, as Go readers decode them. */
export const PLATFORM_SCHEMA: Schema = {
  architecture: STRING,
  os: STRING,
  'os.version': STRING,
  'os.features': STRINGS,
  variant: STRING,
  features: STRINGS,
}

/** A decoded platform object; undefined when it names neither architecture nor os. */
export function platformFrom(fields: GoStruct): Platform | undefined {
  const text = (name: string): string => (typeof fields[name] === 'string' ? (fields[name] as string) : '')
  const list = (name: string): readonly string[] => (Array.isArray(fields[name]) ? (fields[name] as string[]) : [])
  if (text('architecture') === '' && text('os') === '') return undefined
  const platform: { architecture: string; os: string; variant?: string; osVersion?: string; osFeatures?: readonly string[]; features?: readonly string[] } = {
    architecture: text('architecture'),
    os: text('os'),
  }
  if (text('variant') !== '') platform.variant = text('variant')
  if (text('os.version') !== '') platform.osVersion = text('os.version')
  if (list('os.features').length > 0) platform.osFeatures = list('os.features')
  if (list('features').length > 0) platform.features = list('features')
  return platform
}

/** Reads a platform from plain JSON (an image config's architecture/os/variant). */
export function parsePlatform(value: unknown): Platform | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const v = value as Record<string, unknown>
  if (typeof v['architecture'] !== 'string' || typeof v['os'] !== 'string') return undefined
  const platform: { architecture: string; os: string; variant?: string; osVersion?: string } = {
    architecture: v['architecture'],
    os: v['os'],
  }
  if (typeof v['variant'] === 'string' && v['variant'] !== '') platform.variant = v['variant']
  if (typeof v['os.version'] === 'string' && v['os.version'] !== '') platform.osVersion = v['os.version']
  return platform
}

/** `linux/arm64/v8`, the form docker and buildx print. */
export function formatPlatform(platform: Platform | undefined): string {
  if (platform === undefined) return 'no platform'
  const base = `${platform.os}/${platform.architecture}${platform.variant === undefined ? '' : `/${platform.variant}`}`
  return platform.osVersion === undefined ? base : `${base} (${platform.osVersion})`
}

/**
 * Attestation manifests (buildx provenance / SBOM) are listed with platform unknown/unknown
 * and are not a platform of their own, so they never count as duplicates.
 */
export function isAttestationPlatform(platform: Platform | undefined): boolean {
  return platform !== undefined && platform.os === 'unknown' && platform.architecture === 'unknown'
}

/** Same os, architecture, variant and os version: another build of the same platform. */
export function samePlatform(a: Platform | undefined, b: Platform | undefined): boolean {
  if (a === undefined || b === undefined) return false
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '') && (a.osVersion ?? '') === (b.osVersion ?? '')
}

/**
 * Every field a client selects on, os.features and features included: entries whose keys
 * differ are different platforms (image-index.md lets one platform appear more than once).
 */
export function platformKey(platform: Platform): string {
  return JSON.stringify([platform.os, platform.architecture, platform.variant ?? '', platform.osVersion ?? '', [...(platform.osFeatures ?? [])].sort(), [...(platform.features ?? [])].sort()])
}
