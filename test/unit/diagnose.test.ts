import t from 'tap'
import { decide, type Policy, wireError } from '../../src/diagnose/decision.js'
import { candidateRepositories, investigate } from '../../src/diagnose/investigate.js'
import { clientKind, type MessageContext } from '../../src/diagnose/message.js'
import { belongsTo, listTagOf, tagRelation } from '../../src/diagnose/tag-relation.js'
import type { Cause } from '../../src/diagnose/problem.js'
import { MemoryLedgerStore } from '../../src/ledger/memory-store.js'
import type { LedgerStore, PushRecord } from '../../src/ledger/push-record.js'
import type { Digest } from '../../src/oci/digest.js'
import { type IndexManifest, parseManifest } from '../../src/oci/manifest.js'
import { walkIndex } from '../../src/validate/walk.js'
import { buildImage, buildIndex, type BuiltImage, type BuiltIndex } from '../helpers/oci-builder.js'
import { MemorySource } from '../helpers/memory-source.js'

// From findings to causes and messages, table-driven, with an in-memory registry and ledger.

const REPO = 'team/app'
const amdOld = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'old' })
const amdNew = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'new' })
const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'old' })
const list = buildIndex([amdOld, arm])
const CTX: MessageContext = { registryHost: 'reg.example', repository: REPO, reference: '1.0', requestId: 'abc123', client: 'docker', childTags: [] }
const POLICY: Policy = { mode: 'enforce', staleChild: 'reject', platformMismatch: 'reject', onLookupFailure: 'reject', onLedgerFailure: 'reject', retryAfterSeconds: 5 }

function index(i: BuiltIndex): IndexManifest {
  const m = parseManifest(i.manifest.bytes, i.manifest.mediaType)
  if ('problem' in m || m.kind !== 'index') throw new Error('not an index')
  return m
}

function push(repository: string, image: BuiltImage, tag: string | undefined, at: number): PushRecord {
  return { repository, tag, digest: image.manifest.digest as Digest, mediaType: image.manifest.mediaType, at, identity: 'alice', source: 'proxy' }
}

/** `listTag` null: pushed by digest. */
async function diagnose(source: MemorySource, ledger: LedgerStore, i: BuiltIndex = list, listTag: string | null = '1.0') {
  const ctx = { authorization: undefined }
  const parsed = index(i)
  const walk = await walkIndex({ repository: REPO, index: parsed, source, limits: { maxDepth: 4, maxDescriptors: 100, concurrency: 4, timeoutMs: 5000 }, ctx })
  return investigate({
    repository: REPO,
    list: { digest: parsed.digest, children: parsed.manifests },
    listTag: listTag ?? undefined,
    walk,
    ledger,
    prober: source,
    ctx,
    candidatePatterns: ['{name}/{arch}', '{name}-{arch}'],
  })
}

interface Case {
  name: string
  arrange: (s: MemorySource, l: LedgerStore) => Promise<void>
  index?: BuiltIndex
  causes: Cause[]
  message?: RegExp
}

const cases: Case[] = [
  {
    name: 'stale: old child gone, its tag points at the rebuild',
    arrange: async (s, l) => {
      s.addImage(REPO, amdNew, '1.0-amd64')
      s.addImage(REPO, arm, '1.0-arm64')
      await l.record(push(REPO, amdOld, '1.0-amd64', 1000))
      await l.record(push(REPO, amdNew, '1.0-amd64', 2000))
    },
    causes: ['stale'],
    message: new RegExp(`^stale child ${amdOld.manifest.digest} \\(linux/amd64\\): team/app:1.0-amd64 was this digest when pushed at 1970-01-01T00:00:01Z but now points at ${amdNew.manifest.digest.slice(0, 19)} by alice`),
  },
  {
    name: 'stale-present: old child still there, its tag re-pushed for the same platform',
    arrange: async (s, l) => {
      s.addImage(REPO, amdOld)
      s.addImage(REPO, amdNew, '1.0-amd64')
      s.addImage(REPO, arm, '1.0-arm64')
      s.rememberConfig(amdNew)
      await l.record(push(REPO, amdOld, '1.0-amd64', 1000))
      await l.record(push(REPO, amdNew, '1.0-amd64', 2000))
    },
    causes: ['stale-present'],
    message: /is an old build: team\/app:1\.0-amd64 has been pushed again since/,
  },
  {
    name: 'not stale when the tag now holds a list that includes the child',
    arrange: async (s, l) => {
      s.addIndex(REPO, list)
      const later = buildIndex([amdOld])
      s.addIndex(REPO, later, '1.0-amd64')
      await l.record(push(REPO, amdOld, '1.0-amd64', 1000))
      await l.record({ ...push(REPO, amdOld, '1.0-amd64', 2000), digest: later.manifest.digest as Digest })
    },
    causes: [],
  },
  {
    name: 'wrong repository, from the ledger',
    arrange: async (s, l) => {
      s.addImage('elsewhere/amd', amdOld, 'v1')
      s.addImage(REPO, arm)
      await l.record(push('elsewhere/amd', amdOld, 'v1', 1000))
    },
    causes: ['wrong-repository'],
    message: /is not in team\/app but in elsewhere\/amd \(as elsewhere\/amd:v1\)/,
  },
  {
    name: 'wrong repository, by probing {name}/{arch}',
    arrange: async (s) => {
      s.addImage(`${REPO}/amd64`, amdOld)
      s.addImage(REPO, arm)
    },
    causes: ['wrong-repository'],
    message: /is not in team\/app but in team\/app\/amd64/,
  },
  {
    name: 'a repository the client cannot read is never named',
    arrange: async (s, l) => {
      s.addImage('secret/amd', amdOld)
      s.forced.set(`secret/amd@${amdOld.manifest.digest}`, 'denied')
      s.addImage(REPO, arm)
      await l.record(push('secret/amd', amdOld, 'v1', 1000))
    },
    causes: ['never-pushed'],
  },
  {
    name: 'a candidate repository the client cannot read is named as not looked into, never as "never pushed"',
    arrange: async (s, l) => {
      s.addImage(`${REPO}/amd64`, amdOld)
      s.forced.set(`${REPO}/amd64@${amdOld.manifest.digest}`, 'denied')
      s.addImage(REPO, arm)
      await l.record(push(`${REPO}/amd64`, amdOld, 'v1', 1000))
    },
    causes: ['unreadable-elsewhere'],
    message: /is not in team\/app \(nor in team\/app-amd64\), and manifest-guard could not look for it in team\/app\/amd64: the registry refused your credentials there/,
  },
  {
    name: 'stale-present: a bare platform tag (amd64) belongs to every list of the repository',
    arrange: async (s, l) => {
      s.addImage(REPO, amdOld)
      s.addImage(REPO, amdNew, 'amd64')
      s.addImage(REPO, arm, 'arm64')
      s.rememberConfig(amdNew)
      await l.record(push(REPO, amdOld, 'amd64', 1000))
      await l.record(push(REPO, amdNew, 'amd64', 2000))
    },
    causes: ['stale-present'],
    message: /is an old build: team\/app:amd64 has been pushed again since/,
  },
  {
    name: 'deleted since',
    arrange: async (s, l) => {
      s.addImage(REPO, arm)
      await l.record(push(REPO, amdOld, undefined, 1000))
    },
    causes: ['deleted'],
    message: /was pushed to team\/app at 1970-01-01T00:00:01Z and has been deleted since/,
  },
  {
    name: 'never pushed: names what was checked',
    arrange: async (s) => s.addImage(REPO, arm),
    causes: ['never-pushed'],
    message: /is not in team\/app \(nor in team\/app\/amd64, team\/app-amd64\) and manifest-guard has no record/,
  },
  {
    name: 'a layer shared by two children is one problem naming both',
    arrange: async (s) => {
      s.addImage(REPO, amdOld)
      s.blobs.delete(`${REPO}@${amdOld.layers[0]!.digest}`)
    },
    // The same image listed for two platforms: both entries share every blob.
    index: buildIndex([amdOld], { extraEntries: [{ ...amdOld.descriptor, platform: { os: 'linux', architecture: 'riscv64' } }] }),
    causes: ['blob-missing'],
    message: new RegExp(`^layer ${amdOld.layers[0]!.digest} \\(layer 1\\) of the linux/amd64 and linux/riscv64 child`),
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const source = new MemorySource()
    const ledger = new MemoryLedgerStore(1000)
    await c.arrange(source, ledger)
    const found = await diagnose(source, ledger, c.index)
    t.same(found.problems.map((p) => p.cause), c.causes)
    const decision = decide(found.problems, POLICY, CTX)
    t.equal(decision.verdict, c.causes.length === 0 ? 'accepted' : 'rejected')
    if (c.message !== undefined) {
      const message = decision.error?.errors[0]?.message ?? ''
      t.match(message, c.message)
      t.match(message, /\[manifest-guard request abc123\]$/, 'request id last')
      t.notMatch(message, /\n/, 'one line')
    }
  })
}

t.test('a ledger that fails does not stop the diagnosis, and says the stale check could not run', async (t) => {
  const source = new MemorySource()
  source.addImage(REPO, arm)
  const broken: LedgerStore = {
    record: async () => {},
    pushesOf: async () => Promise.reject(new Error('redis down')),
    tagHistory: async () => Promise.reject(new Error('redis down')),
    close: async () => {},
  }
  const found = await diagnose(source, broken)
  t.same(found.problems.map((p) => p.cause), ['never-pushed', 'ledger-unavailable'])
  t.equal(found.ledgerError, 'redis down')
})

t.test('verdicts by policy', async (t) => {
  const stalePresent = [{ cause: 'stale-present' as const, digest: amdOld.manifest.digest as Digest }]
  const failed = [{ cause: 'lookup-failed' as const, reason: 'the registry answered 500' }]
  const hard = [{ cause: 'never-pushed' as const, digest: amdOld.manifest.digest as Digest }]
  const noLedger = [{ cause: 'ledger-unavailable' as const, reason: 'the push ledger is unavailable (no answer within 500 ms)' }]
  const table: { name: string; problems: Parameters<typeof decide>[0]; policy: Partial<Policy>; verdict: string; forward: boolean; status?: number }[] = [
    { name: 'clean', problems: [], policy: {}, verdict: 'accepted', forward: true },
    { name: 'hard problem, enforce', problems: hard, policy: {}, verdict: 'rejected', forward: false, status: 400 },
    { name: 'hard problem, warn mode', problems: hard, policy: { mode: 'warn' }, verdict: 'warned', forward: true },
    { name: 'stale-present, reject', problems: stalePresent, policy: {}, verdict: 'rejected', forward: false, status: 400 },
    { name: 'stale-present, warn', problems: stalePresent, policy: { staleChild: 'warn' }, verdict: 'warned', forward: true },
    { name: 'lookups failed, reject', problems: failed, policy: {}, verdict: 'unverified', forward: false, status: 503 },
    { name: 'lookups failed, forward', problems: failed, policy: { onLookupFailure: 'forward' }, verdict: 'unverified', forward: true },
    { name: 'ledger unavailable, reject (default)', problems: noLedger, policy: {}, verdict: 'unverified', forward: false, status: 503 },
    { name: 'ledger unavailable, forward', problems: noLedger, policy: { onLedgerFailure: 'forward' }, verdict: 'warned', forward: true },
    { name: 'ledger unavailable, lookups forwarded: still refused', problems: [...failed, ...noLedger], policy: { onLookupFailure: 'forward' }, verdict: 'unverified', forward: false, status: 503 },
    { name: 'ledger unavailable, but the list is broken anyway', problems: [...hard, ...noLedger], policy: {}, verdict: 'rejected', forward: false, status: 400 },
    { name: 'denied wins over everything', problems: [...hard, { cause: 'denied' as const }], policy: {}, verdict: 'deferred', forward: true },
  ]
  for (const row of table) {
    const d = decide(row.problems, { ...POLICY, ...row.policy }, CTX)
    t.equal(d.verdict, row.verdict, `${row.name}: verdict`)
    t.equal(d.forward, row.forward, `${row.name}: forward`)
    t.equal(d.error?.status, row.status, `${row.name}: status`)
  }
  const unavailable = decide(failed, POLICY, CTX)
  t.equal(unavailable.error?.headers['retry-after'], '5')
  const ledgerDown = decide(noLedger, POLICY, CTX)
  t.equal(ledgerDown.error?.headers['retry-after'], '5')
  t.match(ledgerDown.error?.errors[0], { code: 'UNAVAILABLE', message: /could not check this list for stale children: the push ledger is unavailable \(no answer within 500 ms\)/ }, 'the answer names the cause')
})

t.test('candidate repositories', async (t) => {
  t.same(candidateRepositories(['{name}/{arch}', '{name}-{os}-{arch}', '{name}/{variant}'], 'a/b', { os: 'linux', architecture: 'arm64' }), ['a/b/arm64', 'a/b-linux-arm64'])
  t.same(candidateRepositories(['{name}/{arch}'], 'a', undefined), [], 'no platform, no guess')
  t.same(candidateRepositories(['{name}/{arch}'], 'a', { os: 'linux', architecture: 'AMD64' }), [], 'invalid names are dropped')
})

t.test('client kinds from User-Agent', async (t) => {
  t.equal(clientKind('Docker-Client/28.2.2 (linux)'), 'docker')
  t.equal(clientKind('Buildah/1.28.2'), 'containers')
  t.equal(clientKind('containers/5.23.1 (github.com/containers/image)'), 'containers')
  t.equal(clientKind('skopeo/1.9.3'), 'containers')
  t.equal(clientKind('curl/7.88'), 'other')
  t.equal(clientKind(undefined), 'other')
})

t.test('which tags belong to a list, by name', async (t) => {
  const amd = { os: 'linux', architecture: 'amd64' }
  const arm = { os: 'linux', architecture: 'arm64' }
  const rows: [string, string, typeof amd, ReturnType<typeof tagRelation>][] = [
    ['1.0-amd64', '1.0', amd, 'derived'],
    ['1.0_arm64', '1.0', arm, 'derived'],
    ['amd64-1.0', '1.0', amd, 'derived'],
    ['1.0-linux-arm64', '1.0', arm, 'derived'],
    ['amd64', 'latest', amd, 'platform'],
    ['linux-arm64', 'stable', arm, 'platform'],
    ['x86_64', '1.0', amd, 'platform'],
    ['arm64', 'latest', amd, 'unrelated'],
    ['1.0-build7', '1.0', amd, 'related'],
    ['latest-amd64', '1.0', amd, 'unrelated'],
    ['nightly-amd64', 'stable', amd, 'unrelated'],
  ]
  for (const [tag, listTag, platform, want] of rows) {
    t.equal(tagRelation(tag, listTag, platform), want, `${tag} for list ${listTag}`)
    t.equal(belongsTo(tag, listTag, platform), want === 'derived' || want === 'platform')
  }
  t.equal(listTagOf('1.0.0-amd64', amd), '1.0.0')
  t.equal(listTagOf('1.0.0-linux-amd64', amd), '1.0.0')
  t.equal(listTagOf('arm64_1.0', arm), '1.0')
  t.equal(listTagOf('latest-x86_64', amd), 'latest')
  t.equal(listTagOf('amd64', amd), undefined, 'a bare platform tag names no list')
  t.equal(listTagOf('1.0-build7', amd), undefined)
})

t.test('released or not: a copy of a list some tag held is deliberate; a push by digest releases nothing', async (t) => {
  // Release 1.0 (amdOld, arm) was also latest; latest-amd64 moved on to amdNew.
  const arrange = async (s: MemorySource, l: LedgerStore, listTags: (string | undefined)[]) => {
    s.addImage(REPO, amdOld)
    s.addImage(REPO, arm, 'latest-arm64')
    s.addImage(REPO, amdNew, 'latest-amd64')
    s.rememberConfig(amdNew)
    await l.record(push(REPO, amdOld, 'latest-amd64', 1000))
    await l.record(push(REPO, arm, 'latest-arm64', 1000))
    for (const [i, tag] of listTags.entries()) await l.record({ ...push(REPO, amdOld, tag, 1100 + i), digest: list.manifest.digest as Digest, mediaType: list.manifest.mediaType })
    await l.record(push(REPO, amdNew, 'latest-amd64', 2000))
  }
  const cases: [string, (string | undefined)[], string | null, Cause[]][] = [
    ['rollback of latest to release 1.0 (the ledger saw it as 1.0)', ['1.0', 'latest'], 'latest', ['released-copy']],
    ['never released, assembled anew for latest', [], 'latest', ['stale-present']],
    ['pushed by digest before, then by tag: not released', [undefined], 'latest', ['stale-present']],
    ['by digest: a warning, nothing ships', [], null, ['tag-moved']],
  ]
  for (const [name, listTags, tag, want] of cases) {
    const source = new MemorySource()
    const ledger = new MemoryLedgerStore(1000)
    await arrange(source, ledger, listTags)
    if (listTags.length > 0) source.addIndex(REPO, list)
    const found = await diagnose(source, ledger, list, tag)
    t.same(found.problems.map((p) => p.cause), want, name)
  }

  // Not in the ledger, but held now by the tag its children's tags were made from (1.0.0-amd64 → 1.0.0).
  const source = new MemorySource()
  const ledger = new MemoryLedgerStore(1000)
  source.addImage(REPO, amdOld)
  source.addImage(REPO, arm, '1.0.0-arm64')
  source.addImage(REPO, amdNew, 'latest-amd64')
  source.rememberConfig(amdNew)
  await ledger.record(push(REPO, amdOld, 'latest-amd64', 1000))
  await ledger.record(push(REPO, amdOld, '1.0.0-amd64', 1001))
  await ledger.record(push(REPO, amdNew, 'latest-amd64', 2000))
  t.same((await diagnose(source, ledger, list, 'latest')).problems.map((p) => p.cause), ['stale-present'], 'no tag holds it: stale')
  source.addIndex(REPO, list, '1.0.0')
  const copy = await diagnose(source, ledger, list, 'latest')
  t.same(copy.problems.map((p) => [p.cause, p.releasedAs]), [['released-copy', '1.0.0']], '1.0.0 holds it now: a copy')
  const decision = decide(copy.problems, POLICY, { ...CTX, reference: 'latest' })
  t.equal(decision.verdict, 'warned', 'forwarded with a warning')
  t.match(
    wireError(copy.problems[0]!, { ...CTX, reference: 'latest' }).message,
    `child ${amdOld.manifest.digest} (linux/amd64) was pushed as team/app:latest-amd64 at 1970-01-01T00:00:01Z, and that tag has been pushed again since, as ${amdNew.manifest.digest.slice(0, 19)} at 1970-01-01T00:00:02Z by alice; forwarded as a deliberate copy (a rollback, a promotion, a release restored): this very list was released as team/app:1.0.0, so team/app:latest now names an older build than team/app:latest-amd64`,
  )
})
