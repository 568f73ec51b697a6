import type { LedgerStore, PushRecord } from '../ledger/push-record.js'
import type { LookupContext } from '../oci/content-lookup.js'
import type { Descriptor } from '../oci/descriptor.js'
import type { Digest } from '../oci/digest.js'
import { isRepositoryName } from '../oci/reference.js'
import { type Platform, parsePlatform, samePlatform } from '../oci/platform.js'
import { type Finding, platformOf, type WalkResult } from '../validate/finding.js'
import { CAUSES, type Problem } from './problem.js'
import type { Prober } from './prober.js'

// From findings to causes. The walk says what is missing; the ledger says what it was, and
// a few more lookups (with the client's own credentials) say where it went. A repository is
// named in a diagnosis only after the client's credentials were shown to read it there, so
// a diagnosis never tells anyone about content they could not see for themselves.

export interface InvestigationInput {
  readonly repository: string
  /** The pushed index's own entries. */
  readonly children: readonly Descriptor[]
  readonly walk: WalkResult
  readonly ledger: LedgerStore
  readonly prober: Prober
  readonly ctx: LookupContext
  /** Patterns such as `{name}/{arch}` where a missing child may have been left. */
  readonly candidatePatterns: readonly string[]
}

export interface Investigation {
  readonly problems: readonly Problem[]
  /** Tags the children were pushed as (ledger), to spell out the rebuild command. */
  readonly childTags: readonly string[]
  /** Set when the ledger could not be read: the diagnosis fell back to the registry alone. */
  readonly ledgerError: string | undefined
}

/** Most other repositories probed for one missing child. */
const MAX_REPOSITORIES_PROBED = 6
/** Largest image config read to learn a platform. */
const MAX_CONFIG_BYTES = 1 << 20

export async function investigate(input: InvestigationInput): Promise<Investigation> {
  const ledger = new SafeLedger(input.ledger)
  const problems: Problem[] = []
  const blobProblems = new Map<string, { finding: Extract<Finding, { kind: 'blob-missing' }>; platforms: (Platform | undefined)[]; parents: Digest[] }>()
  const explained: Promise<void>[] = []

  for (const f of input.walk.findings) {
    switch (f.kind) {
      case 'child-missing':
        explained.push(explainMissingChild(input, ledger, f.descriptor, platformOf(f.path)).then((p) => void problems.push(p)))
        break
      case 'blob-missing': {
        // A layer shared by several children is one problem naming all of them.
        const parent = f.path.chain.at(-1)?.digest
        const key = `${f.role}:${f.descriptor.digest}`
        const group = blobProblems.get(key) ?? { finding: f, platforms: [], parents: [] }
        group.platforms.push(platformOf(f.path))
        if (parent !== undefined) group.parents.push(parent)
        blobProblems.set(key, group)
        break
      }
      case 'size-mismatch':
        problems.push({
          cause: 'size-mismatch',
          object: f.role === 'child' ? 'child manifest' : f.role,
          digest: f.descriptor.digest,
          platforms: [platformOf(f.path)],
          expected: f.descriptor.size,
          actual: f.actual,
          ...(f.role === 'child' ? {} : { parents: parentOf(f.path.chain) }),
        })
        break
      case 'media-type-mismatch':
        problems.push({ cause: 'media-type-mismatch', object: 'child manifest', digest: f.descriptor.digest, platforms: [platformOf(f.path)], expected: f.descriptor.mediaType, actual: f.actual })
        break
      case 'child-unreadable':
        problems.push({ cause: 'child-unreadable', object: 'child manifest', digest: f.descriptor.digest, platforms: [platformOf(f.path)], reason: f.problem })
        break
      case 'duplicate-platform':
        problems.push({ cause: 'duplicate-platform', digest: f.descriptors[1].digest, otherDigest: f.descriptors[0].digest, platforms: [f.platform] })
        break
      case 'too-deep':
        problems.push({ cause: 'too-deep', object: 'child manifest', digest: f.descriptor.digest, platforms: [platformOf(f.path)], limit: f.limit })
        break
      case 'too-many':
        problems.push({ cause: 'too-many', limit: f.limit })
        break
      case 'denied':
        problems.push({ cause: 'denied', digest: f.descriptor.digest, reason: `the registry answered ${f.httpStatus}` })
        break
      case 'lookup-failed':
        problems.push({ cause: 'lookup-failed', digest: f.descriptor.digest, platforms: [platformOf(f.path)], reason: f.reason })
        break
      case 'timeout':
        problems.push({ cause: 'timeout', limit: f.limitMs })
        break
    }
  }

  for (const { finding, platforms, parents } of blobProblems.values()) {
    explained.push(
      ledger.tagsOf(input.repository, parents[0]).then((tags) => {
        problems.push({
          cause: 'blob-missing',
          object: finding.role,
          digest: finding.descriptor.digest,
          platforms,
          parents,
          ...(tags[0] === undefined ? {} : { parentTag: tags[0] }),
          ...(finding.layerIndex === undefined ? {} : { layerIndex: finding.layerIndex }),
        })
      }),
    )
  }

  for (const present of input.walk.presentChildren) {
    explained.push(findSupersededChild(input, ledger, present.descriptor, platformOf(present.path)).then((p) => void (p !== undefined && problems.push(p))))
  }

  const childTags = Promise.all(input.children.map((c) => ledger.tagsOf(input.repository, c.digest)))
  await Promise.all(explained)
  // Stable order for people and tests: by cause, then by the child's place in the list.
  const position = new Map(input.children.map((c, i) => [c.digest as string, i]))
  const place = (p: Problem): number => Math.min(...[p.digest, ...(p.parents ?? [])].map((d) => position.get(d ?? '') ?? Number.MAX_SAFE_INTEGER))
  problems.sort((a, b) => byImportance(a, b) || place(a) - place(b))
  const tags = [...new Set((await childTags).map((t) => t[0]).filter((t): t is string => t !== undefined))]
  return { problems, childTags: tags, ledgerError: ledger.error }
}

async function explainMissingChild(input: InvestigationInput, ledger: SafeLedger, d: Descriptor, platform: Platform | undefined): Promise<Problem> {
  const { repository, prober, ctx } = input
  const base = { object: 'child manifest' as const, digest: d.digest, platforms: [platform] }
  const records = await ledger.pushesOf(d.digest)
  const here = records.filter((r) => r.repository === repository)

  for (const record of distinctTags(here)) {
    const now = await prober.resolveTag(repository, record.tag!, ctx)
    if (now.status === 'found' && now.value.digest !== d.digest) {
      const latest = (await ledger.tagHistory(repository, record.tag!)).find((r) => r.digest === now.value.digest)
      return { ...base, cause: 'stale', tag: record.tag!, pushedAt: record.at, now: now.value.digest, ...nowFacts(latest) }
    }
  }

  const elsewhere = [...new Set(records.filter((r) => r.repository !== repository).map((r) => r.repository))]
  const candidates = candidateRepositories(input.candidatePatterns, repository, platform).filter((c) => !elsewhere.includes(c))
  // Only a 404 says a repository does not hold it; a 401/403 or a failure says nothing, and
  // naming such a repository as "checked" would claim what the client may not know.
  const absent: string[] = []
  for (const other of [...elsewhere, ...candidates].slice(0, MAX_REPOSITORIES_PROBED)) {
    const there = await prober.resolveTag(other, d.digest, ctx)
    if (there.status === 'missing') absent.push(other)
    if (there.status === 'found') {
      const tag = records.find((r) => r.repository === other && r.tag !== undefined)?.tag
      return { ...base, cause: 'wrong-repository', foundIn: other, ...(tag === undefined ? {} : { tag }) }
    }
  }

  const seenHere = here[0]
  if (seenHere !== undefined) {
    return { ...base, cause: 'deleted', pushedAt: seenHere.at, ...(seenHere.tag === undefined ? {} : { tag: seenHere.tag }) }
  }
  return { ...base, cause: 'never-pushed', checked: [repository, ...candidates.filter((c) => absent.includes(c))] }
}

/**
 * The silent case: the child exists, but the tag it was pushed as has since been pushed
 * again with another build of the same platform. The registry would take the list.
 */
async function findSupersededChild(input: InvestigationInput, ledger: SafeLedger, d: Descriptor, platform: Platform | undefined): Promise<Problem | undefined> {
  const { repository, prober, ctx } = input
  const here = (await ledger.pushesOf(d.digest)).filter((r) => r.repository === repository)
  for (const record of distinctTags(here)) {
    const history = await ledger.tagHistory(repository, record.tag!)
    const latest = history[0]
    if (latest === undefined || latest.digest === d.digest || latest.at < record.at) continue
    // The ledger says the tag moved; the registry has the last word on where it points now.
    const now = await prober.resolveTag(repository, record.tag!, ctx)
    if (now.status !== 'found' || now.value.digest === d.digest) continue
    const nowRecord = history.find((r) => r.digest === now.value.digest)
    const facts = { object: 'child manifest' as const, digest: d.digest, platforms: [platform], tag: record.tag!, pushedAt: record.at, now: now.value.digest, ...nowFacts(nowRecord) }
    // The walk may have taken the child's presence from the cache; an old build is exactly
    // what garbage collection removes, so ask the registry before calling it present.
    const still = await prober.resolveTag(repository, d.digest, ctx)
    if (still.status === 'missing') return { ...facts, cause: 'stale' }
    if (!(await supersedesPlatform(input, now.value.digest, d.digest, platform))) continue
    return { ...facts, cause: 'stale-present' }
  }
  return undefined
}

/** Whether `replacement` is another build of `platform` (and not, say, a list that includes the child). */
async function supersedesPlatform(input: InvestigationInput, replacement: Digest, child: Digest, platform: Platform | undefined): Promise<boolean> {
  const { repository, prober, ctx } = input
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

function nowFacts(record: PushRecord | undefined): Partial<Problem> {
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

/** The ledger is advice: if its store is down, the diagnosis goes on with what the registry says. */
class SafeLedger {
  readonly #store: LedgerStore
  // One investigation asks about the same child several times (stale checks, the tags for
  // the fix); a shared store (Redis) is asked once.
  readonly #pushes = new Map<Digest, Promise<readonly PushRecord[]>>()
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

  async tagHistory(repository: string, tag: string): Promise<readonly PushRecord[]> {
    return this.#guard(() => this.#store.tagHistory(repository, tag))
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
