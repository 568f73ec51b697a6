import type { Platform } from '../oci/platform.js'

// How a child's tag relates to the tag of the list naming it, by the names alone. A list `1.0`
// made from `1.0-amd64` and `1.0-arm64` owns those tags: if one of them has been pushed again
// since, the list names an old build (the stale-list story). So does any list of a repository
// whose platform images are tagged with nothing but platform words (`amd64`, `linux-arm64`):
// those tags are the repository's current build of each platform. A release list made from
// another list's floating tags (`latest-amd64` for `1.0`) does not own them: they move on as a
// matter of course, and the list still names the build it was made from, on purpose.

export type TagRelation =
  /** The tag is the list's tag plus a platform word for the child's platform: `1.0-amd64`, `arm64_1.0`. */
  | 'derived'
  /** The tag is nothing but platform words for the child's platform: `amd64`, `linux-arm64`. */
  | 'platform'
  /** The tag contains the list's tag as a word, but the rest is not a platform: `1.0-build7`. */
  | 'related'
  | 'unrelated'

// Words tags use for one architecture, by OCI architecture name. Matched as whole words.
const ARCH_WORDS: Readonly<Record<string, readonly string[]>> = {
  amd64: ['amd64', 'x86_64', 'x86-64', 'x64'],
  arm64: ['arm64', 'aarch64', 'arm64v8'],
  arm: ['arm', 'armhf', 'armel', 'arm32', 'arm32v5', 'arm32v6', 'arm32v7', 'armv5', 'armv6', 'armv7', 'armv7l'],
  '386': ['386', 'i386', 'i686', 'x86'],
  ppc64le: ['ppc64le', 'ppc64el'],
  s390x: ['s390x'],
  riscv64: ['riscv64'],
  mips64le: ['mips64le', 'mips64el'],
  loong64: ['loong64', 'loongarch64'],
}

const SEPARATOR = /[-_.]/

/** The words that may spell `platform` (all platforms when it is unknown), longest first. */
function platformWords(platform: Platform | undefined): { arch: string[]; other: string[] } {
  const arches = platform === undefined ? Object.keys(ARCH_WORDS) : [platform.architecture]
  const arch = new Set<string>()
  for (const a of arches) {
    arch.add(a.toLowerCase())
    for (const w of ARCH_WORDS[a] ?? []) arch.add(w)
    if (platform?.variant !== undefined) arch.add(`${a}${platform.variant}`.toLowerCase())
  }
  const other = new Set<string>(['linux', 'windows', 'darwin', 'freebsd'])
  if (platform !== undefined) {
    other.add(platform.os.toLowerCase())
    if (platform.variant !== undefined) other.add(platform.variant.toLowerCase())
    if (platform.osVersion !== undefined) other.add(platform.osVersion.toLowerCase())
  }
  const byLength = (s: Set<string>): string[] => [...s].sort((a, b) => b.length - a.length)
  return { arch: byLength(arch), other: byLength(other) }
}

/** Whether `words` (what is left of a tag around the list's tag) names `platform`. */
export function namesPlatform(words: string, platform: Platform | undefined): boolean {
  const { arch, other } = platformWords(platform)
  let rest = words.toLowerCase()
  let sawArch = false
  while (rest !== '') {
    const word = [...arch, ...other].find((w) => rest === w || (rest.startsWith(w) && SEPARATOR.test(rest[w.length]!)))
    if (word === undefined) return false
    if (arch.includes(word)) sawArch = true
    rest = rest.slice(word.length).replace(/^[-_.]/, '')
  }
  return sawArch
}

/** How `childTag` relates to `listTag` for a child of `platform`. */
export function tagRelation(childTag: string, listTag: string, platform: Platform | undefined): TagRelation {
  if (childTag === listTag) return 'unrelated'
  if (namesPlatform(childTag, platform)) return 'platform'
  for (const sep of ['-', '_', '.']) {
    if (childTag.startsWith(listTag + sep)) {
      return namesPlatform(childTag.slice(listTag.length + 1), platform) ? 'derived' : 'related'
    }
    if (childTag.endsWith(sep + listTag)) {
      return namesPlatform(childTag.slice(0, -(listTag.length + 1)), platform) ? 'derived' : 'related'
    }
  }
  return 'unrelated'
}

/** Whether `childTag` belongs to the list tagged `listTag`: derived from it, or a bare platform tag. */
export function belongsTo(childTag: string, listTag: string, platform: Platform | undefined): boolean {
  const relation = tagRelation(childTag, listTag, platform)
  return relation === 'derived' || relation === 'platform'
}

/**
 * The list tag a platform image's tag was derived from: `1.0.0` for `1.0.0-amd64` or
 * `amd64_1.0.0`, undefined for a bare platform tag or one that names no platform.
 */
export function listTagOf(childTag: string, platform: Platform | undefined): string | undefined {
  // The longest base first: `1.0.0-linux-amd64` is `1.0.0`, not `1`.
  for (let i = 1; i < childTag.length - 1; i++) {
    if (!SEPARATOR.test(childTag[i]!)) continue
    if (namesPlatform(childTag.slice(i + 1), platform)) return childTag.slice(0, i)
  }
  for (let i = childTag.length - 2; i > 0; i--) {
    if (!SEPARATOR.test(childTag[i]!)) continue
    if (namesPlatform(childTag.slice(0, i), platform)) return childTag.slice(i + 1)
  }
  return undefined
}
