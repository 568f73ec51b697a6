import type { LedgerStore, PushRecord } from '../ledger/push-record.js'
import type { LookupContext } from '../oci/content-lookup.js'
import type { Descriptor } from '../oci/descriptor.js'
import type { Digest } from '../oci/digest.js'
import { isRepositoryName, isTag } from '../oci/reference.js'
import { type Platform, parsePlatform, samePlatform } from '../oci/platform.js'
import { printableDeep } from '../oci/printable.js'
import { type Finding, platformOf, platformsOf, type WalkResult } from '../validate/finding.js'
import { CAUSES, type Problem } from './problem.js'
import type { Prober } from './prober.js'
import { belongsTo, listTagOf, tagRelation } from './tag-relation.js'

// From findings to causes. The walk says what is missing; the ledger says what it was, and
// a few more lookups (with the client's own credentials) say where it went. A repository is
// named in a diagnosis only after the client's credentials were shown to read it there, so
// a diagnosis never tells anyone about content they could not see for themselves. Every
// lookup made here goes through the same budget as the walk's (the prober passed in is
// bounded in concurrency and time), and only the first MAX_EXPLAINED objects are explained.

export interface InvestigationInput {
  readonly repository: string
  /** The pushed index. */
  readonly list: { readonly digest: Digest; readonly children: readonly Descriptor[] }
  /** The list's tag, or undefined when it is pushed (or checked) by digest. */
  readonly listTag: string | undefined
  readonly walk: WalkResult
  readonly ledger: LedgerStore
  readonly prober: Prober
  readonly ctx: LookupContext
  /** Patterns such as `{name}/{arch}` where a missing child may have been left. */
  readonly candidatePatterns: readonly string[]
}

export interface Investigation {
  readonly problems: readonly Problem[]
  /** The tags of the list's own platform images (ledger), to spell out the rebuild command. */
  readonly childTags: readonly string[]
  /** Set when the ledger could not be read: the diagnosis fell back to the registry alone. */
  readonly ledgerError: string | undefined
}

/** Objects explained with lookups; past these a problem says only what the walk found. */
export const MAX_EXPLAINED = 20
/** Most other repositories probed for one missing child. */
const MAX_REPOSITORIES_PROBED = 6
/** Largest image config read to learn a platform. */
const MAX_CONFIG_BYTES = 1 << 20
/** Tags looked up to learn whether a list the ledger does not know is some release's value. */
const RELEASE_TAGS_PROBED = 4

export async function investigate(input: InvestigationInput): Promise<Investigation> {
  const ledger = new SafeLedger(input.ledger)
  const stale = new StaleRule(input, ledger)
  const problems: Problem[] = []
  const explained: Promise<void>[] = []
  let budget = MAX_EXPLAINED
  const explain = (): boolean => budget-- > 0

  // A blob shared by several children is one problem naming all of them.
  const blobGroups = new Map<string, { finding: Extract<Finding, { kind: 'blob-missing' }>; platforms: (Platform | undefined)[]; parents: Digest[] }>()
  for (const f of input.walk.findings) {
    switch (f.kind) {
      case 'child-missing': {
        const base = { object: 'child manifest' as const, digest: f.descriptor.digest, platforms: platformsOf(f.paths) }
        if (explain()) explained.push(explainMissingChild(input, ledger, stale, f.descriptor, platformOf(f.paths[0]!)).then((p) => void problems.push({ ...base, ...p })))
        else problems.push({ ...base, cause: 'child-missing' })
        break
      }
      case 'blob-missing': {
        const key = `${f.role}:${f.descriptor.digest}`
        const group = blobGroups.get(key) ?? { finding: f, platforms: [], parents: [] }
        group.platforms.push(...platformsOf(f.paths))
        const parent = f.role === 'entry' ? undefined : f.paths[0]?.chain.at(-1)?.digest
        if (parent !== undefined) group.parents.push(parent)
        blobGroups.set(key, group)
        break
      }
      case 'size-mismatch':
        problems.push({
          cause: 'size-mismatch',
          object: f.role === 'child' ? 'child manifest' : f.role,
          digest: f.descriptor.digest,
          platforms: platformsOf(f.paths),
          expected: f.descriptor.size,
          actual: f.actual,
          ...(f.role === 'child' || f.role === 'entry' ? {} : { parents: parentOf(f.paths[0]!.chain) }),
        })
        break
      case 'media-type-mismatch':
        problems.push({ cause: 'media-type-mismatch', object: 'child manifest', digest: f.descriptor.digest, platforms: platformsOf(f.paths), expected: f.descriptor.mediaType, actual: f.actual })
        break
      case 'child-unreadable':
        problems.push({ cause: 'child-unreadable', object: 'child manifest', digest: f.descriptor.digest, platforms: platformsOf(f.paths), reason: f.problem })
        break
      case 'platform-mismatch':
        problems.push({ cause: 'platform-mismatch', object: 'child manifest', digest: f.descriptor.digest, platforms: [f.entry], imagePlatform: f.image })
        break
      case 'platform-missing':
        problems.push({ cause: 'platform-missing', missingPlatforms: f.missing, presentPlatforms: f.present })
        break
      case 'duplicate-entry':
        problems.push({ cause: 'duplicate-entry', digest: f.descriptors[1].digest, otherDigest: f.descriptors[0].digest, platforms: [f.descriptors[1].platform] })
        break
      case 'too-deep':
        problems.push({ cause: 'too-deep', object: 'child manifest', digest: f.descriptor.digest, platforms: platformsOf(f.paths), limit: f.limit })
        break
      case 'too-many':
        problems.push({ cause: 'too-many', limit: f.limit, reason: f.counted })
        break
      case 'denied':
        problems.push({ cause: 'denied', digest: f.descriptor.digest, reason: `the registry answered ${f.httpStatus}` })
        break
      case 'lookup-failed':
        problems.push({ cause: 'lookup-failed', digest: f.descriptor.digest, platforms: platformsOf(f.paths), reason: f.reason })
        break
      case 'timeout':
        problems.push({ cause: 'timeout', limit: f.limitMs })
        break
    }
  }

  for (const { finding, platforms, parents } of blobGroups.values()) {
    const problem: Problem = {
      cause: 'blob-missing',
      object: finding.role,
      digest: finding.descriptor.digest,
      platforms,
      parents,
      ...(finding.layerIndex === undefined ? {} : { layerIndex: finding.layerIndex }),
    }
    if (parents[0] === undefined || !explain()) problems.push(problem)
    else explained.push(ledger.tagsOf(input.repository, parents[0]).then((tags) => void problems.push(tags[0] === undefined ? problem : { ...problem, parentTag: tags[0] })))
  }

  for (const present of input.walk.presentChildren) {
    explained.push(stale.check(present.descriptor, platformOf(present.paths[0]!)).then((p) => void (p !== undefined && problems.push(p))))
  }

  await Promise.all(explained)
  const childTags = await stale.ownTags()
  // The stale check needs the ledger: without it a list is unverified, never clean.
  if (ledger.error !== undefined) problems.push({ cause: 'ledger-unavailable', reason: ledger.error })
  // Stable order for people and tests: by cause, then by the child's place in the list.
  const position = new Map(input.list.children.map((c, i) => [c.digest as string, i]))
  const place = (p: Problem): number => Math.min(...[p.digest, ...(p.parents ?? [])].map((d) => position.get(d ?? '') ?? Number.MAX_SAFE_INTEGER))
  problems.sort((a, b) => byImportance(a, b) || place(a) - place(b))
  // The one place the facts of a push become the words people read (the client's message,
  // the decision record and everything made of it, a check's result): what came in a body
  // (platforms, media types, a child's parse problem) is made printable here (printable.ts).
  return { problems: problems.map((p) => printableDeep(p)), childTags, ledgerError: ledger.error }
}

type Explanation = Pick<Problem, 'cause' | 'tag' | 'pushedAt' | 'now' | 'nowAt' | 'nowBy' | 'foundIn' | 'checked' | 'unreadable'>

async function explainMissingChild(input: InvestigationInput, ledger: SafeLedger, stale: StaleRule, d: Descriptor, platform: Platform | undefined): Promise<Explanation> {
  const { repository, prober, ctx } = input
  const records = await ledger.pushesOf(d.digest)
  const here = records.filter((r) => r.repository === repository)

  for (const record of distinctTags(here)) {
    const now = await prober.resolveTag(repository, record.tag!, ctx)
    if (now.status === 'found' && now.value.digest !== d.digest) {
      const latest = (await ledger.tagHistory(repository, record.tag!)).find((r) => r.digest === now.value.digest)
      stale.noteTag(record.tag!, platform)
      return { cause: 'stale', tag: record.tag!, pushedAt: record.at, now: now.value.digest, ...nowFacts(latest) }
    }
  }

  const elsewhere = [...new Set(records.filter((r) => r.repository !== repository).map((r) => r.repository))]
  const patterned = candidateRepositories(input.candidatePatterns, repository, platform)
  const candidates = patterned.filter((c) => !elsewhere.includes(c))
  // Only a 404 says a repository does not hold it; a 401/403 or a failure says nothing, and
  // naming such a repository as "checked" would claim what the client may not know.
  const absent: string[] = []
  const refused: string[] = []
  for (const other of [...elsewhere, ...candidates].slice(0, MAX_REPOSITORIES_PROBED)) {
    const there = await prober.resolveTag(other, d.digest, ctx)
    if (there.status === 'missing') absent.push(other)
    if (there.status === 'denied') refused.push(other)
    if (there.status === 'found') {
      const tag = records.find((r) => r.repository === other && r.tag !== undefined)?.tag
      return { cause: 'wrong-repository', foundIn: other, ...(tag === undefined ? {} : { tag }) }
    }
  }

  const seenHere = here[0]
  if (seenHere !== undefined) {
    return { cause: 'deleted', pushedAt: seenHere.at, ...(seenHere.tag === undefined ? {} : { tag: seenHere.tag }) }
  }
  const checked = [repository, ...candidates.filter((c) => absent.includes(c))]
  // A token-auth registry scopes the client's token to the repository pushed to: where it was
  // refused nothing was learnt, and the answer says so. Only candidate repositories (names
  // made from the settings) are named; a refusal in one the ledger alone knows of changes
  // nothing in the answer, which would otherwise tell of content the client cannot read.
  const unreadable = patterned.filter((c) => refused.includes(c))
  if (unreadable.length > 0) return { cause: 'unreadable-elsewhere', checked, unreadable }
  return { cause: 'never-pushed', checked }
}

/**
 * The silent case: a child that exists, but whose tag has since been pushed again with another
 * build of the same platform. Whether that makes the list stale depends on whose tag it is, by
 * its name (tag-relation.ts), and on whether the list is new or a copy of a released one:
 * - a list already released (some tag's value: the ledger saw it pushed by tag, or a tag named
 *   by its children's tags holds it now) pointed at a tag that does not hold it now is a
 *   deliberate copy (a rollback, a promotion, a yanked release restored): forwarded, and a
 *   warning (`released-copy`) when one of the list's own tags moved on;
 * - otherwise (a list assembled anew, or re-sent unchanged onto the tag that already holds it,
 *   whatever other tag holds it too) a child whose own tag (`1.0-amd64` for list `1.0`, or a
 *   bare platform tag `amd64`) now names another build is stale;
 * - a tag that only shares a word with the list's (`1.0-build7`), or any tag when the list is
 *   pushed by digest: a warning (`tag-moved`), since nothing says either way;
 * - another list's floating tag (`latest-amd64` for list `1.0`): nothing; those move on.
 * A push by digest releases nothing: only a tag's value counts, so pushing a refused list by
 * digest first cannot turn its refusal into an acceptance.
 */
class StaleRule {
  readonly #in: InvestigationInput
  readonly #ledger: SafeLedger
  #released: Promise<{ readonly copy: boolean; readonly as: string | undefined }> | undefined
  /** Tags of this list's platform images, for the fix commands. */
  readonly #own = new Set<string>()

  constructor(input: InvestigationInput, ledger: SafeLedger) {
    this.#in = input
    this.#ledger = ledger
  }

  async check(d: Descriptor, platform: Platform | undefined): Promise<Problem | undefined> {
    const { repository, prober, ctx } = this.#in
    const here = (await this.#ledger.pushesOf(d.digest)).filter((r) => r.repository === repository)
    for (const record of distinctTags(here)) {
      const tag = record.tag!
      const history = await this.#ledger.tagHistory(repository, tag)
      const latest = history[0]
      if (latest === undefined || latest.digest === d.digest || latest.at < record.at) continue
      const relation = this.#relation(tag, platform)
      if (relation === 'unrelated') continue
      // The ledger says the tag moved; the registry has the last word on where it points now.
      const now = await prober.resolveTag(repository, tag, ctx)
      if (now.status !== 'found' || now.value.digest === d.digest) continue
      if (!(await this.#supersedes(now.value.digest, d.digest, platform))) continue
      const facts = { object: 'child manifest' as const, digest: d.digest, platforms: [platform], tag, pushedAt: record.at, now: now.value.digest, ...nowFacts(history.find((r) => r.digest === now.value.digest)) }
      const release = await this.#release()
      if (release.copy) {
        if (relation === 'own') return { ...facts, cause: 'released-copy', releasedAs: release.as! }
        continue
      }
      if (relation !== 'own') return { ...facts, cause: 'tag-moved' }
      // Re-sent onto a tag that holds it: the message can say the list is another tag's release too.
      return { ...facts, cause: 'stale-present', ...(release.as === undefined ? {} : { releasedAs: release.as }) }
    }
    return undefined
  }

  /** A missing child's tag, for the fix commands, when it is the list's own. */
  noteTag(tag: string, platform: Platform | undefined): void {
    if (this.#in.listTag !== undefined && belongsTo(tag, this.#in.listTag, platform)) this.#own.add(tag)
  }

  /** The tags of this list's platform images, known once every check is done. */
  async ownTags(): Promise<string[]> {
    const { repository, list } = this.#in
    for (const child of list.children.slice(0, MAX_EXPLAINED)) {
      for (const tag of await this.#ledger.tagsOf(repository, child.digest)) this.noteTag(tag, child.platform)
    }
    return [...this.#own]
  }

  #relation(tag: string, platform: Platform | undefined): 'own' | 'related' | 'unrelated' {
    const listTag = this.#in.listTag
    // Pushed by digest: nothing to derive a relation from.
    if (listTag === undefined) return 'related'
    const relation = tagRelation(tag, listTag, platform)
    return relation === 'derived' || relation === 'platform' ? 'own' : relation
  }

  /**
   * Whether pointing the pushed tag at this list is a copy of a release, and a tag it was
   * released as. Released: some tag's value, per the ledger (a push by tag) or, for a list the
   * ledger does not know, per a tag its children's tags were made from holding it now. A copy:
   * released, and the pushed tag does not hold it now (a rollback, a promotion, a release
   * restored). Re-sent onto the tag that holds it, it is judged like a list assembled anew,
   * whatever other tag holds it too: its own tags are what its pusher means to ship.
   */
  #release(): Promise<{ readonly copy: boolean; readonly as: string | undefined }> {
    this.#released ??= (async () => {
      const { repository, prober, ctx, list, listTag } = this.#in
      // A lookup that fails says nothing: judged as a re-send, the stricter reading.
      const now = listTag === undefined ? undefined : await prober.resolveTag(repository, listTag, ctx)
      const holds = now !== undefined && now.status !== 'missing' && (now.status !== 'found' || now.value.digest === list.digest)
      const tags = distinctTags((await this.#ledger.pushesOf(list.digest)).filter((r) => r.repository === repository)).map((r) => r.tag!)
      const other = tags.find((t) => t !== listTag)
      if (other !== undefined) return { copy: !holds, as: other }
      if (holds) return { copy: false, as: undefined }
      if (listTag !== undefined && tags.includes(listTag)) return { copy: true, as: listTag }
      // Not in the ledger (pushed straight to the registry, or before the ledger's memory): the
      // list tags its children's tags were made from may hold it now.
      for (const tag of (await this.#releaseCandidates()).slice(0, RELEASE_TAGS_PROBED)) {
        const there = await prober.resolveTag(repository, tag, ctx)
        if (there.status === 'found' && there.value.digest === list.digest) return { copy: true, as: tag }
      }
      return { copy: false, as: undefined }
    })()
    return this.#released
  }

  /** `1.0.0` for a child tagged `1.0.0-amd64`: the tags a release of these children would have. */
  async #releaseCandidates(): Promise<string[]> {
    const { repository, list, listTag } = this.#in
    const out = new Set<string>()
    for (const child of list.children.slice(0, MAX_EXPLAINED)) {
      for (const tag of await this.#ledger.tagsOf(repository, child.digest)) {
        const base = listTagOf(tag, child.platform)
        if (base !== undefined && base !== listTag && isTag(base)) out.add(base)
      }
    }
    return [...out]
  }

  /** Whether `replacement` is another build of `platform` (and not, say, a list that includes the child). */
  async #supersedes(replacement: Digest, child: Digest, platform: Platform | undefined): Promise<boolean> {
    const { repository, prober, ctx } = this.#in
    const found = await prober.manifest(repository, replacement, ctx)
    if (found.status !== 'found' || found.value.manifest === undefined) return false
    const m = found.value.manifest
    if (m.kind === 'index') {
      if (m.manifests.some((e) => e.digest === child)) return false
      return platform !== undefined && m.manifests.some((e) => samePlatform(e.platform, platform))
    }
    if (m.kind !== 'image') return false
    if (platform === undefined) return true
    const config = await prober.blobBytes(repository, m.config.digest, ctx, MAX_CONFIG_BYTES)
    if (config.status !== 'found') return false
    try {
      const doc = JSON.parse(config.value.toString('utf8')) as Record<string, unknown>
      return samePlatform(parsePlatform(doc), platform)
    } catch {
      return false
    }
  }
}

export function candidateRepositories(patterns: readonly string[], repository: string, platform: Platform | undefined): string[] {
  const out: string[] = []
  for (const pattern of patterns) {
    if (platform === undefined && /\{(arch|os|variant)\}/.test(pattern)) continue
    if (platform?.variant === undefined && pattern.includes('{variant}')) continue
    const name = pattern
      .replaceAll('{name}', repository)
      .replaceAll('{arch}', platform?.architecture ?? '')
      .replaceAll('{os}', platform?.os ?? '')
      .replaceAll('{variant}', platform?.variant ?? '')
    if (name !== repository && isRepositoryName(name) && !out.includes(name)) out.push(name)
  }
  return out
}

function distinctTags(records: readonly PushRecord[]): PushRecord[] {
  const seen = new Set<string>()
  const out: PushRecord[] = []
  for (const r of records) {
    if (r.tag === undefined || seen.has(r.tag)) continue
    seen.add(r.tag)
    out.push(r)
  }
  return out
}

function nowFacts(record: PushRecord | undefined): Pick<Problem, 'nowAt' | 'nowBy'> {
  if (record === undefined) return {}
  return { nowAt: record.at, ...(record.identity === undefined ? {} : { nowBy: record.identity }) }
}

function parentOf(chain: readonly Descriptor[]): Digest[] {
  const parent = chain.at(-1)?.digest
  return parent === undefined ? [] : [parent]
}

function byImportance(a: Problem, b: Problem): number {
  return CAUSES.indexOf(a.cause) - CAUSES.indexOf(b.cause)
}

/**
 * If the ledger's store is down (or a tag's history has a gap), the diagnosis goes on with what
 * the registry says, and `error` says so: the decision then fails closed (or warns).
 */
class SafeLedger {
  readonly #store: LedgerStore
  // One investigation asks about the same child several times (stale checks, the tags for
  // the fix); a shared store (Redis) is asked once.
  readonly #pushes = new Map<Digest, Promise<readonly PushRecord[]>>()
  readonly #tags = new Map<string, Promise<readonly PushRecord[]>>()
  error: string | undefined

  constructor(store: LedgerStore) {
    this.#store = store
  }

  pushesOf(digest: Digest): Promise<readonly PushRecord[]> {
    let pending = this.#pushes.get(digest)
    if (pending === undefined) {
      pending = this.#guard(() => this.#store.pushesOf(digest))
      this.#pushes.set(digest, pending)
    }
    return pending
  }

  tagHistory(repository: string, tag: string): Promise<readonly PushRecord[]> {
    const key = `${repository}:${tag}`
    let pending = this.#tags.get(key)
    if (pending === undefined) {
      pending = this.#guard(() => this.#store.tagHistory(repository, tag))
      this.#tags.set(key, pending)
    }
    return pending
  }

  async tagsOf(repository: string, digest: Digest | undefined): Promise<string[]> {
    if (digest === undefined) return []
    const records = await this.pushesOf(digest)
    return distinctTags(records.filter((r) => r.repository === repository)).map((r) => r.tag!)
  }

  async #guard(read: () => Promise<readonly PushRecord[]>): Promise<readonly PushRecord[]> {
    if (this.error !== undefined) return []
    try {
      return await read()
    } catch (err) {
      this.error = (err as Error).message
      return []
    }
  }
}
