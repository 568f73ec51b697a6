import t from 'tap'
import { newLookupStats } from '../../src/oci/content-lookup.js'
import type { IndexManifest } from '../../src/oci/manifest.js'
import { parseManifest } from '../../src/oci/manifest.js'
import type { FindingKind } from '../../src/validate/finding.js'
import { walkIndex, type WalkLimits } from '../../src/validate/walk.js'
import { buildImage, buildIndex, type BuiltIndex, type Descriptor, MT, sha256 } from '../helpers/oci-builder.js'
import { MemorySource } from '../helpers/memory-source.js'

// The graph walk, table-driven, against an in-memory registry.

const LIMITS: WalkLimits = { maxDepth: 4, maxDescriptors: 1000, concurrency: 4, timeoutMs: 5_000 }
const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'walk', layerCount: 3 })
const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'walk', layerCount: 2 })
const foreign = buildImage({ platform: { os: 'windows', architecture: 'amd64' }, seed: 'walk', foreignLayer: true })
const withUrls = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'urls', layerUrls: ['https://mirror.example/layer'] })

function parsed(index: BuiltIndex): IndexManifest {
  const m = parseManifest(index.manifest.bytes, index.manifest.mediaType)
  if ('problem' in m || m.kind !== 'index') throw new Error('not an index')
  return m
}

function rawIndex(entries: Descriptor[]): IndexManifest {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }))
  const m = parseManifest(bytes, undefined)
  if ('problem' in m || m.kind !== 'index') throw new Error('not an index')
  return m
}

interface Case {
  name: string
  setup: (s: MemorySource) => void
  index: IndexManifest
  limits?: Partial<WalkLimits>
  expect: FindingKind[]
}

const cases: Case[] = [
  { name: 'sound list', setup: (s) => s.addIndex('r', buildIndex([amd, arm])), index: parsed(buildIndex([amd, arm])), expect: [] },
  { name: 'child missing', setup: (s) => s.addImage('r', amd), index: parsed(buildIndex([amd, arm])), expect: ['child-missing'] },
  { name: 'both children missing', setup: () => {}, index: parsed(buildIndex([amd, arm])), expect: ['child-missing', 'child-missing'] },
  {
    name: 'layer missing',
    setup: (s) => {
      s.addIndex('r', buildIndex([amd, arm]))
      s.blobs.delete(`r@${arm.layers[1]!.digest}`)
    },
    index: parsed(buildIndex([amd, arm])),
    expect: ['blob-missing'],
  },
  {
    name: 'config missing',
    setup: (s) => {
      s.addIndex('r', buildIndex([amd]))
      s.blobs.delete(`r@${amd.config.digest}`)
    },
    index: parsed(buildIndex([amd])),
    expect: ['blob-missing'],
  },
  { name: 'foreign layer not looked up', setup: (s) => s.addImage('r', foreign), index: parsed(buildIndex([foreign])), expect: [] },
  {
    name: 'wrong child size',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([{ ...amd.descriptor, size: amd.descriptor.size + 1 }]),
    expect: ['size-mismatch'],
  },
  {
    name: 'wrong child media type',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([{ ...amd.descriptor, mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }]),
    expect: ['media-type-mismatch'],
  },
  {
    name: 'wrong blob size',
    setup: (s) => {
      s.addImage('r', amd)
      s.blobs.set(`r@${amd.layers[0]!.digest}`, 1)
    },
    index: parsed(buildIndex([amd])),
    expect: ['size-mismatch'],
  },
  {
    name: 'the same platform twice, nothing to tell them apart: a warning',
    setup: (s) => {
      s.addImage('r', amd)
      s.addImage('r', arm)
    },
    index: rawIndex([amd.descriptor, { ...arm.descriptor, platform: { os: 'linux', architecture: 'amd64' } }]),
    expect: ['duplicate-entry'],
  },
  {
    name: 'the same entry twice: a warning, one lookup',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([amd.descriptor, amd.descriptor]),
    expect: ['duplicate-entry'],
  },
  {
    name: 'gzip and zstd variants of one platform are not duplicates',
    setup: (s) => {
      s.addImage('r', amd)
      s.addImage('r', arm)
    },
    index: rawIndex([amd.descriptor, { ...arm.descriptor, platform: { os: 'linux', architecture: 'amd64' }, annotations: { 'io.github.containers.compression.zstd': 'true' } }]),
    expect: [],
  },
  {
    name: 'os.features, features, os.version and variant make other platforms',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([
      { ...amd.descriptor, platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' } as never },
      { ...amd.descriptor, platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1' } as never },
      { ...amd.descriptor, platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1', 'os.features': ['win32k'] } as never },
      { ...amd.descriptor, platform: { os: 'linux', architecture: 'amd64', features: ['sse4'] } as never },
      { ...amd.descriptor, platform: { os: 'linux', architecture: 'amd64', variant: 'v3' } },
    ]),
    expect: [],
  },
  {
    name: 'BuildKit cache index: entries that are blobs are looked up as blobs',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([
      { mediaType: 'application/vnd.buildkit.cacheconfig.v0', digest: amd.config.digest, size: amd.config.bytes.length },
      ...amd.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length, annotations: { 'buildkit/createdat': '2024-01-01T00:00:00Z' } })),
    ]),
    expect: [],
  },
  {
    name: 'BuildKit cache index with a layer missing',
    setup: (s) => {
      s.addImage('r', amd)
      s.blobs.delete(`r@${amd.layers[1]!.digest}`)
    },
    index: rawIndex(amd.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length }))),
    expect: ['blob-missing'],
  },
  {
    name: 'an entry with no media type that is a manifest of the repository',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([{ digest: amd.manifest.digest, size: amd.manifest.bytes.length } as Descriptor]),
    expect: [],
  },
  {
    name: 'an entry with no media type that is nowhere',
    setup: () => {},
    index: rawIndex([{ digest: amd.manifest.digest, size: amd.manifest.bytes.length } as Descriptor]),
    expect: ['child-missing'],
  },
  {
    name: 'an ordinary layer with urls is still looked up',
    setup: (s) => {
      s.addImage('r', withUrls)
      s.blobs.delete(`r@${withUrls.layers[0]!.digest}`)
    },
    index: parsed(buildIndex([withUrls])),
    expect: ['blob-missing'],
  },
  {
    name: 'attestations share unknown/unknown without being duplicates',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([
      { ...amd.descriptor, platform: { os: 'unknown', architecture: 'unknown' } },
      { ...amd.descriptor, platform: { os: 'unknown', architecture: 'unknown' } },
    ]),
    expect: [],
  },
  { name: 'denied lookups', setup: (s) => s.forced.set(`r@${amd.manifest.digest}`, 'denied'), index: parsed(buildIndex([amd])), expect: ['denied'] },
  { name: 'failed lookups', setup: (s) => s.forced.set(`r@${amd.manifest.digest}`, 'failed'), index: parsed(buildIndex([amd])), expect: ['lookup-failed'] },
  { name: 'too many descriptors', setup: (s) => s.addIndex('r', buildIndex([amd, arm])), index: parsed(buildIndex([amd, arm])), limits: { maxDescriptors: 5 }, expect: ['too-many'] },
  { name: 'distinct objects are counted, not references', setup: (s) => s.addIndex('r', buildIndex([amd, arm])), index: rawIndex([amd.descriptor, amd.descriptor, amd.descriptor, arm.descriptor]), limits: { maxDescriptors: 9 }, expect: ['duplicate-entry'] },
  {
    name: 'nested index walked',
    setup: (s) => s.addIndex('r', buildIndex([buildIndex([amd, arm], { platform: { os: 'linux', architecture: 'amd64' } })])),
    index: parsed(buildIndex([buildIndex([amd, arm], { platform: { os: 'linux', architecture: 'amd64' } })])),
    expect: [],
  },
  {
    name: 'nested index too deep',
    setup: (s) => s.addIndex('r', buildIndex([buildIndex([buildIndex([amd])])])),
    index: parsed(buildIndex([buildIndex([buildIndex([amd])])])),
    limits: { maxDepth: 2 },
    expect: ['too-deep'],
  },
  // What the registry holds at a digest decides what it is, never the entry's media type.
  ...['application/vnd.oci.image.manifest.v1+JSON', MT.ociLayer, 'x', MT.ociNondistributable].map((mediaType) => ({
    name: `an image named as ${mediaType}, whose layer is gone, is walked as the image it is`,
    setup: (s: MemorySource) => {
      s.addImage('r', arm)
      s.blobs.delete(`r@${arm.layers[1]!.digest}`)
    },
    index: rawIndex([{ ...arm.descriptor, mediaType }]),
    expect: ['blob-missing', 'media-type-mismatch'] as FindingKind[],
  })),
  {
    name: 'an image named without a media type, whose layer is gone, is walked',
    setup: (s) => {
      s.addImage('r', arm)
      s.blobs.delete(`r@${arm.layers[1]!.digest}`)
    },
    index: rawIndex([{ digest: arm.descriptor.digest, size: arm.descriptor.size } as Descriptor]),
    expect: ['blob-missing'],
  },
  {
    name: 'blobs listed as entries (a BuildKit cache) are blobs',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([
      { mediaType: MT.ociLayer, digest: amd.layers[0]!.digest, size: amd.layers[0]!.bytes.length },
      { mediaType: 'application/vnd.buildkit.cacheconfig.v0', digest: amd.config.digest, size: amd.config.bytes.length },
    ]),
    expect: [],
  },
  {
    name: 'a blob entry that is not there',
    setup: () => {},
    index: rawIndex([{ mediaType: MT.ociLayer, digest: amd.layers[0]!.digest, size: amd.layers[0]!.bytes.length }]),
    expect: ['blob-missing'],
  },
  {
    name: 'an entry that says it is a manifest at a digest that is only a blob',
    setup: (s) => s.addImage('r', amd),
    index: rawIndex([{ mediaType: MT.ociManifest, digest: amd.layers[0]!.digest, size: amd.layers[0]!.bytes.length }]),
    expect: ['child-missing'],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const source = new MemorySource()
    c.setup(source)
    const result = await walkIndex({ repository: 'r', index: c.index, source, limits: { ...LIMITS, ...c.limits }, ctx: { authorization: undefined, stats: newLookupStats() } })
    t.same(result.findings.map((f) => f.kind).sort(), [...c.expect].sort())
  })
}

t.test('maxDescriptors counts distinct objects: 50 children sharing 99 layers are 149 objects', async (t) => {
  const source = new MemorySource()
  const base = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'shared99', layerCount: 99 })
  const layers = base.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length }))
  const children = Array.from({ length: 50 }, (_, i) => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: base.config.digest, size: base.config.bytes.length }, layers, annotations: { n: String(i) } }))
    return { mediaType: MT.ociManifest, digest: sha256(bytes), size: bytes.length, bytes, platform: { os: 'linux', architecture: `a${i}` } }
  })
  for (const c of children) source.manifests.set(`r@${c.digest}`, { bytes: c.bytes, digest: c.digest, mediaType: MT.ociManifest })
  for (const b of [base.config, ...base.layers]) source.blobs.set(`r@${b.digest}`, b.bytes.length)
  const index = rawIndex(children.map(({ bytes: _, ...d }) => d))
  const fits = await walkIndex({ repository: 'r', index, source, limits: { ...LIMITS, maxDescriptors: 150 }, ctx: { authorization: undefined } })
  t.same(fits.findings, [], '150 distinct objects allowed: no finding')
  t.equal(fits.stats.manifestsChecked, 50)
  t.equal(fits.stats.blobsChecked, 100, 'the config and 99 layers, once each')
  const tight = await walkIndex({ repository: 'r', index, source, limits: { ...LIMITS, maxDescriptors: 148 }, ctx: { authorization: undefined } })
  t.same(tight.findings, [{ kind: 'too-many', limit: 148, counted: 'objects' }], 'one object over the limit is refused with the true count')
})

t.test('a digest named 5 000 times is looked up once and reported once', async (t) => {
  const source = new MemorySource()
  const ghost = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'ghost' })
  const index = rawIndex(Array.from({ length: 5000 }, () => ghost.descriptor))
  const result = await walkIndex({ repository: 'r', index, source, limits: LIMITS, ctx: { authorization: undefined } })
  t.equal(source.calls, 1, 'one lookup')
  t.same(result.findings.map((f) => f.kind).sort(), ['child-missing', 'duplicate-entry'])
  const missing = result.findings.find((f) => f.kind === 'child-missing')
  t.equal(missing?.kind === 'child-missing' ? missing.paths.length : 0, 32, 'the places it is named are kept, bounded')
})

t.test('a blob shared by children is looked up once', async (t) => {
  const source = new MemorySource()
  const a = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'shared' })
  const b = { ...a, descriptor: { ...a.descriptor, platform: { os: 'linux', architecture: 'arm64' } } }
  source.addImage('r', a)
  await walkIndex({ repository: 'r', index: rawIndex([a.descriptor, b.descriptor]), source, limits: LIMITS, ctx: { authorization: undefined } })
  t.equal(source.calls, 1 + 2, 'one manifest lookup, one per blob')
})

t.test('concurrency is bounded', async (t) => {
  const source = new MemorySource()
  source.delayMs = 5
  const images = Array.from({ length: 12 }, (_, i) => buildImage({ platform: { os: 'linux', architecture: `a${i}` }, seed: 'conc', layerCount: 3 }))
  const index = buildIndex(images)
  source.addIndex('r', index)
  const result = await walkIndex({ repository: 'r', index: parsed(index), source, limits: { ...LIMITS, concurrency: 3 }, ctx: { authorization: undefined } })
  t.same(result.findings, [])
  t.equal(source.maxInFlight, 3, 'never more than the limit in flight, and the limit used')
  t.equal(result.stats.manifestsChecked, 12)
  t.equal(result.stats.blobsChecked, 48)
})

t.test('the time budget ends the walk with one timeout finding', async (t) => {
  const source = new MemorySource()
  source.delayMs = 200
  const index = buildIndex([amd, arm])
  source.addIndex('r', index)
  const result = await walkIndex({ repository: 'r', index: parsed(index), source, limits: { ...LIMITS, timeoutMs: 50, concurrency: 1 }, ctx: { authorization: undefined } })
  t.same(result.findings.map((f) => f.kind), ['timeout'])
  // Counted, not timed: a whole walk asks 2 manifests and 7 blobs. The first lookup outlasts
  // the budget; at most the other child already queued follows, and no blob is asked.
  t.ok(source.calls <= 2, `returned without walking everything: ${source.calls} of 9 lookups`)
})
