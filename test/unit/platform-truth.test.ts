import t from 'tap'
import { decide, type Policy } from '../../src/diagnose/decision.js'
import { investigate } from '../../src/diagnose/investigate.js'
import type { MessageContext } from '../../src/diagnose/message.js'
import { MemoryLedgerStore } from '../../src/ledger/memory-store.js'
import type { ContentLookup, LookupContext } from '../../src/oci/content-lookup.js'
import type { Digest } from '../../src/oci/digest.js'
import { type IndexManifest, parseManifest } from '../../src/oci/manifest.js'
import { type Platform, platformsDisagree } from '../../src/oci/platform.js'
import { walkIndex, type WalkLimits } from '../../src/validate/walk.js'
import { blob, MT } from '../helpers/oci-builder.js'
import { MemorySource } from '../helpers/memory-source.js'

// Platform truth: an entry's platform against its image's config, and required platforms.
// The must-pass shapes are what real producers write; the must-refuse ones are the mistakes
// that make a node pull an image it cannot run.

const LIMITS: WalkLimits = { maxDepth: 4, maxDescriptors: 1000, concurrency: 4, timeoutMs: 5_000 }

/** A source that also reads image configs, counting the reads. */
class ConfigSource extends MemorySource {
  configReads = 0
  async imageConfig(repository: string, digest: Digest, ctx: LookupContext, max: number): Promise<ContentLookup<Buffer>> {
    this.configReads++
    return this.blobBytes(repository, digest, ctx, max)
  }
}

interface Image {
  readonly digest: string
  readonly size: number
  readonly mediaType: string
}

/** Stores an image whose config says `config` (os, architecture, variant, os.version as given). */
function addImage(s: ConfigSource, config: Record<string, unknown>, opts: { configType?: string; artifactType?: string } = {}): Image {
  const cfg = blob(Buffer.from(JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: [] } })), opts.configType ?? MT.ociConfig)
  const layer = blob(Buffer.from(`layer of ${JSON.stringify(config)} ${opts.configType ?? ''}`), MT.ociLayer)
  const doc = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    ...(opts.artifactType === undefined ? {} : { artifactType: opts.artifactType }),
    config: { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.bytes.length },
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }],
  }
  const m = blob(Buffer.from(JSON.stringify(doc)), MT.ociManifest)
  s.manifests.set(`r@${m.digest}`, m)
  s.blobs.set(`r@${cfg.digest}`, cfg.bytes.length)
  s.blobs.set(`r@${layer.digest}`, layer.bytes.length)
  s.configs.set(cfg.digest, cfg.bytes)
  return { digest: m.digest, size: m.bytes.length, mediaType: m.mediaType }
}

function index(entries: readonly Record<string, unknown>[]): IndexManifest {
  const m = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: entries })), undefined)
  if ('problem' in m || m.kind !== 'index') throw new Error('not an index')
  return m
}

function entry(image: Image, platform: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mediaType: image.mediaType, digest: image.digest, size: image.size, ...(platform === undefined ? {} : { platform }), ...extra }
}

const linux = (architecture: string, variant?: string): Record<string, unknown> => ({ os: 'linux', architecture, ...(variant === undefined ? {} : { variant }) })
const windows = (version: string): Record<string, unknown> => ({ os: 'windows', architecture: 'amd64', 'os.version': version })

interface Shape {
  readonly name: string
  readonly entry: Record<string, unknown>
  readonly config: Record<string, unknown>
}

// Entry platform, config platform.
const MUST_PASS: Shape[] = [
  { name: 'arm64/v8 entry, arm64 config without variant (official images, BuildKit)', entry: linux('arm64', 'v8'), config: linux('arm64') },
  { name: 'arm/v6 entry, arm config without variant (classic docker build)', entry: linux('arm', 'v6'), config: linux('arm') },
  { name: 'arm/v7 entry, arm/v7 config', entry: linux('arm', 'v7'), config: linux('arm', 'v7') },
  { name: 'arm/v7 entry, armhf config', entry: linux('arm', 'v7'), config: linux('armhf') },
  { name: 'arm/v6 entry, armel config', entry: linux('arm', 'v6'), config: linux('armel') },
  { name: 'amd64 entry, x86_64 config', entry: linux('amd64'), config: linux('x86_64') },
  { name: 'arm64 entry, aarch64 config', entry: linux('arm64'), config: linux('aarch64') },
  { name: '386 entry, i386 config', entry: linux('386'), config: linux('i386') },
  { name: 'amd64 entry, amd64/v1 config', entry: linux('amd64'), config: linux('amd64', 'v1') },
  { name: 'amd64/v3 entry, amd64 config without variant', entry: linux('amd64', 'v3'), config: linux('amd64') },
  { name: 'Windows revision drift', entry: windows('10.0.17763.3770'), config: windows('10.0.17763.1') },
  { name: 'Windows entry with os.features', entry: { ...windows('10.0.20348.2113'), 'os.features': ['win32k'] }, config: windows('10.0.20348.2113') },
  { name: 'Windows config without os.version', entry: windows('10.0.20348.2113'), config: { os: 'windows', architecture: 'amd64' } },
  { name: 'riscv64', entry: linux('riscv64'), config: linux('riscv64') },
  { name: 'ppc64le', entry: linux('ppc64le'), config: linux('ppc64le') },
  { name: 's390x', entry: linux('s390x'), config: linux('s390x') },
  { name: 'mips64le', entry: linux('mips64le'), config: linux('mips64le') },
  { name: 'upper-case os in the config', entry: linux('amd64'), config: { os: 'Linux', architecture: 'amd64' } },
]

const MUST_REFUSE: Shape[] = [
  { name: 'amd64 entry on an arm64 image', entry: linux('amd64'), config: linux('arm64') },
  { name: 'arm64 entry on an amd64 image', entry: linux('arm64'), config: linux('amd64') },
  { name: 'windows entry on a linux image', entry: windows('10.0.17763.3770'), config: linux('amd64') },
  { name: 'arm entry on an arm64 image', entry: linux('arm'), config: linux('arm64') },
  { name: '386 entry on an amd64 image', entry: linux('386'), config: linux('amd64') },
  { name: 'arm/v6 entry on an arm/v7 image', entry: linux('arm', 'v6'), config: linux('arm', 'v7') },
  { name: 'amd64/v3 entry on an amd64/v2 image', entry: linux('amd64', 'v3'), config: linux('amd64', 'v2') },
  { name: 'Windows 17763 entry on a 20348 image', entry: windows('10.0.17763.3770'), config: windows('10.0.20348.2113') },
  { name: 'x86_64 entry on an aarch64 image', entry: linux('x86_64'), config: linux('aarch64') },
]

function platformOf(fields: Record<string, unknown>): Platform {
  const p: { os: string; architecture: string; variant?: string; osVersion?: string } = { os: String(fields['os']), architecture: String(fields['architecture']) }
  if (typeof fields['variant'] === 'string') p.variant = fields['variant']
  if (typeof fields['os.version'] === 'string') p.osVersion = fields['os.version']
  return p
}

t.test('the rule: must pass and must refuse', async (t) => {
  for (const s of MUST_PASS) t.notOk(platformsDisagree(platformOf(s.entry), platformOf(s.config)), `passes: ${s.name}`)
  for (const s of MUST_REFUSE) t.ok(platformsDisagree(platformOf(s.entry), platformOf(s.config)), `refused: ${s.name}`)
})

t.test('the walk compares each image entry with its config', async (t) => {
  for (const [shapes, refused] of [
    [MUST_PASS, false],
    [MUST_REFUSE, true],
  ] as const) {
    for (const s of shapes) {
      const source = new ConfigSource()
      const image = addImage(source, s.config)
      const walk = await walkIndex({ repository: 'r', index: index([entry(image, s.entry)]), source, limits: LIMITS, ctx: { authorization: undefined } })
      const kinds = walk.findings.map((f) => f.kind)
      t.same(kinds, refused ? ['platform-mismatch'] : [], `${refused ? 'refused' : 'passes'}: ${s.name}`)
    }
  }
})

t.test('what is not an image is not compared', async (t) => {
  const source = new ConfigSource()
  const amd = addImage(source, linux('amd64'))
  const arm = addImage(source, linux('arm64'))
  // BuildKit's attestation in its two forms: an image config saying unknown, and an artifact.
  const legacyAttestation = addImage(source, { os: 'unknown', architecture: 'unknown' })
  const artifactAttestation = addImage(source, {}, { configType: MT.ociEmpty, artifactType: 'application/vnd.in-toto+json' })
  const signature = addImage(source, { os: 'linux', architecture: 'arm64' }, { configType: 'application/vnd.dev.cosign.simplesigning.v1+json' })
  const cacheConfig = addImage(source, { os: 'linux', architecture: 'arm64' }, { configType: 'application/vnd.buildkit.cacheconfig.v0' })
  const list = index([
    entry(amd, linux('amd64')),
    entry(arm, linux('arm64')),
    entry(legacyAttestation, { os: 'unknown', architecture: 'unknown' }, { annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd.digest } }),
    // An attestation labelled with a real platform by a tool that copied it: its config is unknown.
    entry(legacyAttestation, linux('amd64'), { annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } }),
    entry(artifactAttestation, linux('amd64')),
    entry(signature, linux('amd64'), { artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' }),
    entry(cacheConfig, linux('amd64')),
    // No platform: nothing claimed.
    entry(arm, undefined),
  ])
  const walk = await walkIndex({ repository: 'r', index: list, source, limits: LIMITS, ctx: { authorization: undefined } })
  // (Several entries say linux/amd64 here, which is a duplicate-entry warning of its own.)
  t.same(walk.findings.filter((f) => f.kind !== 'duplicate-entry'), [])
  // Only the image configs were read, each once: amd, arm (twice named) and the legacy attestation.
  t.equal(source.configReads, 3)
})

t.test('swapped labels: one problem per entry, naming both platforms and the fix for each client', async (t) => {
  const source = new ConfigSource()
  const amd = addImage(source, linux('amd64'))
  const arm = addImage(source, linux('arm64'))
  const list = index([entry(arm, linux('amd64')), entry(amd, linux('arm64'))])
  const walk = await walkIndex({ repository: 'r', index: list, source, limits: LIMITS, ctx: { authorization: undefined } })
  const found = await investigate({ repository: 'r', list: { digest: list.digest, children: list.manifests }, listTag: '1.0', walk, ledger: new MemoryLedgerStore(100), prober: source, ctx: { authorization: undefined }, candidatePatterns: [] })
  t.same(
    found.problems.map((p) => p.cause),
    ['platform-mismatch', 'platform-mismatch'],
  )
  const policy: Policy = { mode: 'enforce', staleChild: 'reject', platformMismatch: 'reject', onLookupFailure: 'reject', onLedgerFailure: 'reject', retryAfterSeconds: 5 }
  for (const client of ['docker', 'containers', 'other'] as const) {
    const ctx: MessageContext = { registryHost: 'reg.example:5000', repository: 'r', reference: '1.0', requestId: 'req-1', client, childTags: [] }
    const decision = decide(found.problems, policy, ctx)
    t.equal(decision.verdict, 'rejected', client)
    t.equal(decision.error?.status, 400)
    const first = decision.error!.errors[0]!
    t.equal(first.code, 'MANIFEST_INVALID')
    t.match(first.message, `entry says linux/amd64, the image is linux/arm64`)
    t.match(first.message, arm.digest)
    t.match(first.detail, { imagePlatform: 'linux/arm64', platforms: ['linux/amd64'] })
    if (client === 'docker') t.match(first.message, `docker manifest annotate --os linux --arch arm64 reg.example:5000/r:1.0 reg.example:5000/r@${arm.digest}`)
    if (client === 'containers') t.match(first.message, `buildah manifest annotate --os linux --arch arm64`)
    if (client === 'other') t.match(first.message, `set the entry's platform to linux/arm64`)
    // A mirror of a mislabelled upstream: a warning, forwarded.
    t.equal(decide(found.problems, { ...policy, platformMismatch: 'warn' }, ctx).verdict, 'warned')
    // warn mode forwards whatever the cause.
    t.equal(decide(found.problems, { ...policy, mode: 'warn' }, ctx).verdict, 'warned')
  }
})

t.test('a config the registry cannot serve leaves the list unverified; a huge one is not judged', async (t) => {
  const source = new ConfigSource()
  const arm = addImage(source, linux('arm64'))
  const cfgDigest = [...source.configs.keys()][0]!
  source.forced.set(`r@${cfgDigest}`, 'failed')
  // The forced answer applies to the HEAD as well: both report the failure, once per object.
  const walk = await walkIndex({ repository: 'r', index: index([entry(arm, linux('amd64'))]), source, limits: LIMITS, ctx: { authorization: undefined } })
  t.ok(walk.findings.length > 0)
  t.ok(walk.findings.every((f) => f.kind === 'lookup-failed'))

  const big = new (class extends ConfigSource {
    override async imageConfig(): Promise<ContentLookup<Buffer>> {
      return { status: 'failed', reason: 'blob larger than 1048576 bytes' }
    }
  })()
  const image = addImage(big, linux('arm64'))
  const walk2 = await walkIndex({ repository: 'r', index: index([entry(image, linux('amd64'))]), source: big, limits: LIMITS, ctx: { authorization: undefined } })
  t.same(walk2.findings, [])
})

t.test('required platforms', async (t) => {
  const source = new ConfigSource()
  const amd = addImage(source, linux('amd64'))
  const arm = addImage(source, linux('arm64'))
  const att = addImage(source, { os: 'unknown', architecture: 'unknown' })
  const run = async (entries: Record<string, unknown>[], required: string[]) =>
    (await walkIndex({ repository: 'r', index: index(entries), source, limits: LIMITS, ctx: { authorization: undefined }, requiredPlatforms: required })).findings
  t.same(await run([entry(amd, linux('amd64')), entry(arm, linux('arm64', 'v8'))], ['linux/amd64', 'linux/arm64']), [], 'whole list (arm64/v8 is arm64)')
  const partial = await run([entry(amd, linux('amd64')), entry(att, { os: 'unknown', architecture: 'unknown' })], ['linux/amd64', 'linux/arm64'])
  t.same(partial, [{ kind: 'platform-missing', missing: ['linux/arm64'], present: ['linux/amd64'] }], 'attestations do not count')
  t.same(await run([entry(amd, linux('amd64'))], ['linux/arm/v7']), [{ kind: 'platform-missing', missing: ['linux/arm/v7'], present: ['linux/amd64'] }])
  t.same(await run([entry(amd, linux('amd64'))], []), [], 'nothing required')
  const found = await investigate({
    repository: 'r',
    list: { digest: 'sha256:0' as Digest, children: [] },
    listTag: '1.0',
    walk: { findings: partial, stats: { manifestsChecked: 0, blobsChecked: 0 }, presentChildren: [] },
    ledger: new MemoryLedgerStore(100),
    prober: source,
    ctx: { authorization: undefined },
    candidatePatterns: [],
  })
  const ctx: MessageContext = { registryHost: 'reg.example', repository: 'r', reference: '1.0', requestId: 'req-2', client: 'docker', childTags: [] }
  const decision = decide(found.problems, { mode: 'enforce', staleChild: 'reject', platformMismatch: 'reject', onLookupFailure: 'reject', onLedgerFailure: 'reject', retryAfterSeconds: 5 }, ctx)
  t.equal(decision.verdict, 'rejected')
  t.match(decision.error!.errors[0]!.message, 'the list has no linux/arm64 image')
  t.match(decision.error!.errors[0]!.message, 'it has linux/amd64')
})
