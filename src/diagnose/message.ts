import { shortDigest } from '../oci/digest.js'
import { describeMediaType } from '../oci/media-type.js'
import { formatPlatform, type Platform } from '../oci/platform.js'
import type { Problem } from './problem.js'

// Every sentence a user reads. Clients print only `<code>: <message>` (docs/clients.md), so
// each message is one self-contained line, most important words first: which digest, which
// platform, what it is, why, and the exact fix; the request id last, to quote.

export type ClientKind = 'docker' | 'containers' | 'other'

export interface MessageContext {
  /** The host the client pushed to, as it wrote it (fix commands must work as pasted). */
  readonly registryHost: string
  readonly repository: string
  /** Tag or digest of the list being pushed. */
  readonly reference: string
  readonly requestId: string
  readonly client: ClientKind
  /** Tags the list's children were pushed as, when known: used to spell out rebuild commands. */
  readonly childTags: readonly string[]
}

/** Tells docker from the containers/image tools by the User-Agent, for fitting fix commands. */
export function clientKind(userAgent: string | undefined): ClientKind {
  const ua = (userAgent ?? '').toLowerCase()
  // The docker CLI's manifest commands say `Docker-Client/28.2.2 (linux)`; the engine `docker/…`.
  if (ua.startsWith('docker-client/') || ua.startsWith('docker/')) return 'docker'
  if (/buildah|podman|skopeo|containers\//.test(ua)) return 'containers'
  return 'other'
}

export function messageFor(p: Problem, ctx: MessageContext): string {
  return `${sentence(p, ctx)} [manifest-guard request ${ctx.requestId}]`
}

function sentence(p: Problem, ctx: MessageContext): string {
  const repo = ctx.repository
  const what = subject(p)
  switch (p.cause) {
    case 'stale':
      return (
        `stale child ${what}: ${repo}:${p.tag} was this digest when pushed ${at(p.pushedAt)} but now points at ${shortDigest(p.now ?? '')}${by(p)}, ` +
        `so this list was made before the rebuild. Fix: ${recreate(ctx)}`
      )
    case 'stale-present':
      return (
        `stale child ${what} is an old build: ${repo}:${p.tag} has been pushed again since, as ${shortDigest(p.now ?? '')}${p.nowAt === undefined ? '' : ` ${at(p.nowAt)}`}${by(p)}; ` +
        `the registry would accept this list and ship the old image${p.releasedAs === undefined ? '' : ` (it is ${repo}:${p.releasedAs} too: to point ${repo}:${ctx.reference} at that release, nothing needs pushing, it already does)`}. Fix: ${recreate(ctx)}`
      )
    case 'wrong-repository':
      return (
        `child ${what} is not in ${repo} but in ${p.foundIn}${p.tag === undefined ? '' : ` (as ${p.foundIn}:${p.tag})`}; a list can only name manifests of its own repository. ` +
        `Fix: ${ctx.client === 'containers' ? 'push with manifest push --all, which copies the children, or ' : ''}copy it into ${repo} first: ` +
        `skopeo copy --all docker://${ctx.registryHost}/${p.foundIn}@${p.digest} docker://${ctx.registryHost}/${repo}@${p.digest}`
      )
    case 'deleted':
      return (
        `child ${what} was pushed to ${repo}${p.tag === undefined ? '' : ` as ${repo}:${p.tag}`} ${at(p.pushedAt)} and has been deleted since (garbage collection or retention). ` +
        `Fix: push the ${platformWords(p)}image again, then ${recreate(ctx)}`
      )
    case 'never-pushed':
      return (
        `child ${what} is not in ${repo}${others(p.checked, repo)} and manifest-guard has no record of it being pushed anywhere your credentials read. ` +
        `Most likely the platform images were never pushed here (buildah/podman manifest push without --all), or were deleted since. ` +
        `Fix: push the platform images to ${repo} first, or push the list with --all`
      )
    case 'unreadable-elsewhere':
      return (
        `child ${what} is not in ${repo}${others(p.checked, repo)}, and manifest-guard could not look for it in ` +
        `${(p.unreadable ?? []).join(', ')}: the registry refused your credentials there ` +
        `(a token-auth registry gives a token for the repository pushed to only). A list can only name manifests of its own repository. ` +
        `Fix: push the platform images to ${repo} first, or push the list with --all (buildah/podman), or copy each child in with credentials that read where it is: ` +
        `skopeo copy --all docker://${ctx.registryHost}/<repository>@${p.digest} docker://${ctx.registryHost}/${repo}@${p.digest}`
      )
    case 'child-missing':
      return (
        `child ${what} is not in ${repo} (not explained further: this push has more problems than manifest-guard explains in one answer). ` +
        `Fix: push the platform images to ${repo} first, or push the list with --all`
      )
    case 'blob-missing':
      if (p.object === 'entry') {
        return (
          `blob ${what} that the list names is missing from ${repo}: it was deleted or never uploaded, so the registry would accept the list and pulls would fail. ` +
          `Fix: push that blob to ${repo} again (for a BuildKit cache, run the build again with --cache-to), then push the list`
        )
      }
      return (
        `${p.object} ${p.digest}${p.layerIndex === undefined ? '' : ` (layer ${p.layerIndex + 1})`} of the ${platformWords(p)}child ${parents(p)} is missing from ${repo}: ` +
        `the child manifest is there but this blob was deleted or never uploaded, so the registry would accept the list and pulls would fail. ` +
        `Fix: push the ${platformWords(p)}image to ${repo}${p.parentTag === undefined ? '' : ` (${ctx.registryHost}/${repo}:${p.parentTag})`} again, then push the list`
      )
    case 'platform-mismatch':
      return (
        `mislabelled child ${p.digest}: entry says ${platforms(p)}, the image is ${formatPlatform(p.imagePlatform)} (its config says so), ` +
        `so ${platforms(p)} nodes would pull an image that cannot run there. Fix: ${relabel(p, ctx)}`
      )
    case 'platform-missing':
      return (
        `the list has no ${(p.missingPlatforms ?? []).join(' and ')} image (required for ${repo} by validation.requiredPlatforms; it has ${(p.presentPlatforms ?? []).join(', ') || 'no platform'}): ` +
        `that platform's build did not make it into the list. Fix: build and push the ${(p.missingPlatforms ?? []).join(' and ')} image to ${repo}, then ${recreate(ctx)}`
      )
    case 'size-mismatch': {
      const named = p.object === 'child manifest' ? 'child' : p.object === 'entry' ? 'blob' : p.object
      const says = p.object === 'child manifest' || p.object === 'entry' ? 'the list' : `its manifest ${parents(p)}`
      return (
        `wrong size for ${named} ${what}: ${says} says ${p.expected} bytes, ` +
        `${repo} holds ${p.actual}; pulls would fail verification. Fix: regenerate the list from the registry (docker manifest create, buildah manifest add) instead of editing it`
      )
    }
    case 'media-type-mismatch':
      return (
        `wrong media type for child ${what}: the list says ${String(p.expected)}, ${repo} holds a ${describeMediaType(String(p.actual))} (${String(p.actual)}); ` +
        `clients would refuse it at pull time. Fix: regenerate the list from the registry (docker manifest create, buildah manifest add)`
      )
    case 'child-unreadable':
      return `child ${what} in ${repo} is not a manifest manifest-guard can read (${p.reason}). Fix: push the platform image again, then the list`
    case 'too-deep':
      return `nested indexes deeper than ${p.limit} levels (at ${p.digest}); manifest-guard checks no deeper (validation.maxDepth). Fix: flatten the index`
    case 'too-many':
      return p.reason === 'references'
        ? `the list names its manifests and blobs more than ${p.limit} times in all, more than manifest-guard follows in one push. Fix: name each object once, or split the list`
        : `the list references more than ${p.limit} distinct manifests and blobs, the most manifest-guard checks in one push (validation.maxDescriptors). Fix: split it, or raise the limit`
    case 'tag-moved':
      return (
        `child ${what} was pushed as ${repo}:${p.tag} ${at(p.pushedAt)}, and that tag has been pushed again since, as ${shortDigest(p.now ?? '')}${p.nowAt === undefined ? '' : ` ${at(p.nowAt)}`}${by(p)}; ` +
        `the list still names the earlier build. Forwarded: nothing says whether this list owns that tag`
      )
    case 'released-copy':
      return (
        `child ${what} was pushed as ${repo}:${p.tag} ${at(p.pushedAt)}, and that tag has been pushed again since, as ${shortDigest(p.now ?? '')}${p.nowAt === undefined ? '' : ` ${at(p.nowAt)}`}${by(p)}; ` +
        `forwarded as a deliberate copy (a rollback, a promotion, a release restored): this very list was released as ${repo}:${p.releasedAs}, so ${repo}:${ctx.reference} now names an older build than ${repo}:${p.tag}`
      )
    case 'duplicate-entry':
      return p.digest === p.otherDigest
        ? `the list names ${p.digest} (${platforms(p)}) twice; clients use the first entry. Fix: recreate the list with each image once`
        : `the list names ${platforms(p)} twice with nothing to tell the entries apart (no other platform field, media type or annotation differs): ${p.otherDigest} and ${p.digest}; ` +
            `clients take the first, so the second is never pulled. Fix: recreate the list with one image per platform`
    case 'denied':
      return `the registry refused manifest-guard's lookup of ${p.digest} with your credentials (${p.reason})`
    case 'lookup-failed':
      return `manifest-guard could not verify this list: looking up ${p.digest} failed (${p.reason}). Retry shortly`
    case 'timeout':
      return `manifest-guard could not verify this list within ${p.limit} ms (validation.timeoutMs). Retry shortly`
    case 'ledger-unavailable':
      return `manifest-guard could not check this list for stale children: ${p.reason ?? 'the push ledger is unavailable'}. Retry shortly`
  }
}

/** What a failed repair (validation.repair: copy-children) tried, after the rejection itself. */
export function repairFailedMessage(report: { readonly failed?: string; readonly children: readonly unknown[] }, requestId: string): string {
  return (
    `manifest-guard tried to copy the children into this repository (validation.repair: copy-children) and stopped: ${report.failed ?? 'unknown error'}; ` +
    `${report.children.length} of them were copied before that, and the list was not pushed [manifest-guard request ${requestId}]`
  )
}

/** The closing entry of an answer cut at its first problems. */
export function moreProblemsMessage(count: number, ctx: Pick<MessageContext, 'requestId'>): string {
  return `and ${count} more problem${count === 1 ? '' : 's'} of the same list, not listed here; the decision record counts them [manifest-guard request ${ctx.requestId}]`
}

/** A cross-repository mount the registry could not do, as docker would otherwise report it. */
export function mountRefusedMessage(facts: { digest: string; from: string; repository: string; requestId: string }): string {
  return (
    `cannot mount blob ${facts.digest} from ${facts.from} into ${facts.repository}: ${facts.from} does not hold it ` +
    `(deleted by garbage collection or retention, or never pushed there), so the platform image in ${facts.from} that the list names is broken or stale. ` +
    `Fix: push that platform image to ${facts.from} again (or rebuild it), then recreate the list with docker manifest rm, create and push ` +
    `[manifest-guard request ${facts.requestId}]`
  )
}

/** `child manifest sha256:… (linux/amd64)`. */
function subject(p: Problem): string {
  return `${p.digest ?? ''} (${platforms(p)})`
}

function platforms(p: Problem): string {
  const names = [...new Set((p.platforms ?? []).map((x: Platform | undefined) => formatPlatform(x)))]
  if (names.length === 0) return 'no platform'
  return names.length > PARENTS_NAMED ? `${names.slice(0, PARENTS_NAMED).join(', ')} and ${names.length - PARENTS_NAMED} more platforms` : names.join(' and ')
}

/** `linux/arm64 ` or nothing, for sentences that read well either way. */
function platformWords(p: Problem): string {
  const known = (p.platforms ?? []).filter((x) => x !== undefined)
  return known.length === 0 ? '' : `${platforms(p)} `
}

/** Parents named in a sentence; a layer shared by fifty children names a few and counts the rest. */
const PARENTS_NAMED = 4

function parents(p: Problem): string {
  const all = [...new Set(p.parents ?? [])]
  const named = all.slice(0, PARENTS_NAMED).map(shortDigest).join(', ')
  return all.length > PARENTS_NAMED ? `${named} and ${all.length - PARENTS_NAMED} more` : named
}

function at(ms: number | undefined): string {
  return ms === undefined ? '' : `at ${new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')}`
}

function by(p: Problem): string {
  return p.nowBy === undefined ? '' : ` by ${p.nowBy}`
}

function others(checked: readonly string[] | undefined, repo: string): string {
  const rest = (checked ?? []).filter((r) => r !== repo)
  return rest.length === 0 ? '' : ` (nor in ${rest.join(', ')})`
}

/** How to give a mislabelled entry its image's platform, in the client's own commands. */
function relabel(p: Problem, ctx: MessageContext): string {
  const list = `${ctx.registryHost}/${ctx.repository}${ctx.reference.includes(':') ? `@${ctx.reference}` : `:${ctx.reference}`}`
  const image = p.imagePlatform
  const flags = image === undefined ? '' : `--os ${image.os} --arch ${image.architecture}${image.variant === undefined ? '' : ` --variant ${image.variant}`}`
  const child = `${ctx.registryHost}/${ctx.repository}@${p.digest ?? ''}`
  if (ctx.client === 'docker') {
    return `docker manifest annotate ${flags} ${list} ${child}, then docker manifest push ${list}; or point the entry at the right image (docker buildx imagetools create takes each platform from the image itself)`
  }
  if (ctx.client === 'containers') {
    return `buildah manifest annotate ${flags} <list> ${p.digest ?? ''} (podman manifest annotate alike), or add the image again without --os/--arch so its own platform is used, then manifest push --all to ${list}`
  }
  return `set the entry's platform to ${formatPlatform(image)}, or point it at the ${platforms(p)} image, then push ${list} again`
}

/** How to remake the list from the current platform images, in the client's own commands. */
function recreate(ctx: MessageContext): string {
  const list = `${ctx.registryHost}/${ctx.repository}${ctx.reference.includes(':') ? `@${ctx.reference}` : `:${ctx.reference}`}`
  const images = ctx.childTags.length > 0 ? ctx.childTags.map((t) => `${ctx.registryHost}/${ctx.repository}:${t}`).join(' ') : '<the rebuilt platform images>'
  if (ctx.client === 'docker') {
    return `docker manifest rm ${list}; docker manifest create ${list} ${images}; docker manifest push ${list} (or push with --purge so no stale list is kept, or use docker buildx imagetools create)`
  }
  if (ctx.client === 'containers') {
    return `recreate the list from ${images} (buildah/podman manifest rm, manifest create, manifest add) and push it with manifest push --all to ${list}`
  }
  return `recreate the list ${list} from ${images} and push it again`
}
