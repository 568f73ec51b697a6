// Platform of an index entry (image-spec image-index.md "platform").

export interface Platform {
  readonly architecture: string
  readonly os: string
  readonly variant?: string
  readonly osVersion?: string
}

/** Reads a platform object; undefined when absent or not shaped like one. */
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

export function samePlatform(a: Platform | undefined, b: Platform | undefined): boolean {
  if (a === undefined || b === undefined) return false
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '') && (a.osVersion ?? '') === (b.osVersion ?? '')
}
