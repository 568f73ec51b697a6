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

/** The os/architecture/variant of a platform with the aliases producers write folded together. */
export interface NormalPlatform {
  readonly os: string
  readonly architecture: string
  readonly variant: string
}

/**
 * containerd's aliases (platforms.normalizeArch), but only for fields that are present: its
 * defaults (an empty arm variant read as v7, an empty os as the host's) would invent facts an
 * entry or a config never stated. `arm64/v8` and `amd64/v1` are the base of their architecture.
 */
export function normalizePlatform(p: { readonly os?: string; readonly architecture?: string; readonly variant?: string }): NormalPlatform {
  const os = (p.os ?? '').toLowerCase()
  let architecture = (p.architecture ?? '').toLowerCase()
  let variant = (p.variant ?? '').toLowerCase()
  switch (architecture) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64'
      if (variant === 'v1') variant = ''
      break
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64'
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = ''
      break
    case 'i386':
      architecture = '386'
      break
    case 'armhf':
      architecture = 'arm'
      variant = 'v7'
      break
    case 'armel':
      architecture = 'arm'
      variant = 'v6'
      break
    case 'armv5':
    case 'armv5l':
    case 'armv6':
    case 'armv6l':
    case 'armv7':
    case 'armv7l':
      variant = `v${architecture[4]}`
      architecture = 'arm'
      break
    case 'arm':
      if (/^[5-8]$/.test(variant)) variant = `v${variant}`
      break
  }
  return { os, architecture, variant }
}

/** Windows compares builds on major.minor.build (`10.0.17763`); the revision drifts with patches. */
function windowsBuild(version: string): string {
  return version.split('.').slice(0, 3).join('.')
}

/**
 * Whether an entry's platform and its image's config disagree: os and architecture after the
 * aliases, the variant only when both state one, Windows os.version on major.minor.build when
 * both state it. os.features and features are never compared (configs do not carry them
 * reliably). A field one side leaves empty is not compared.
 */
export function platformsDisagree(entry: Platform, config: Platform): boolean {
  const e = normalizePlatform(entry)
  const c = normalizePlatform(config)
  if (e.os !== '' && c.os !== '' && e.os !== c.os) return true
  if (e.architecture !== '' && c.architecture !== '' && e.architecture !== c.architecture) return true
  if (e.variant !== '' && c.variant !== '' && e.variant !== c.variant) return true
  if (e.os === 'windows' && entry.osVersion !== undefined && config.osVersion !== undefined && windowsBuild(entry.osVersion) !== windowsBuild(config.osVersion)) return true
  return false
}

/** `linux/arm64` or `linux/arm/v7` as written in settings; undefined when it is not one. */
export function parsePlatformSpec(spec: string): NormalPlatform | undefined {
  const parts = spec.trim().split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((s) => !/^[A-Za-z0-9_.-]+$/.test(s))) return undefined
  return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, ...(parts[2] === undefined ? {} : { variant: parts[2] }) })
}

/** Whether an entry's platform is the required one (a required platform without variant takes any). */
export function meetsPlatform(entry: Platform, required: NormalPlatform): boolean {
  const e = normalizePlatform(entry)
  return e.os === required.os && e.architecture === required.architecture && (required.variant === '' || e.variant === required.variant)
}
