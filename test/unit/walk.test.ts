import t from 'tap'
import { newLookupStats } from '../../src/oci/content-lookup.js'
import type { IndexManifest } from '../../src/oci/manifest.js'
import { parseManifest } from '../../src/oci/manifest.js'
import type { FindingKind } from '../../src/validate/finding.js'
import { walkIndex, type WalkLimits } from '../../src/validate/walk.js'
import { buildImage, buildIndex, type BuiltIndex, type Descriptor } from '../helpers/oci-builder.js'
import { MemorySource } from '../helpers/memory-source.js'

// The graph walk, table-driven, against an in-memory registry.

const LIMITS: WalkLimits = { maxDepth: 4, maxDescriptors: 1000, concurrency: 4, timeoutMs: 5_000 }
const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'walk', layerCount: 3 })
const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'walk', layerCount: 2 })
const foreign = buildImage({ platform: { os: 'windows', architecture: 'amd64' }, seed: 'walk', foreignLayer: true })

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
    name: 'duplicate platform',
    setup: (s) => {
      s.addImage('r', amd)
      s.addImage('r', arm)
    },
    index: rawIndex([amd.descriptor, { ...arm.descriptor, platform: { os: 'linux', architecture: 'amd64' } }]),
    expect: ['duplicate-platform'],
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
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const source = new MemorySource()
    c.setup(source)
    const result = await walkIndex({ repository: 'r', index: c.index, source, limits: { ...LIMITS, ...c.limits }, ctx: { authorization: undefined, stats: newLookupStats() } })
    t.same(result.findings.map((f) => f.kind).sort(), [...c.expect].sort())
  })
}

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
  const started = Date.now()
  const result = await walkIndex({ repository: 'r', index: parsed(index), source, limits: { ...LIMITS, timeoutMs: 50, concurrency: 1 }, ctx: { authorization: undefined } })
  t.same(result.findings.map((f) => f.kind), ['timeout'])
  t.ok(Date.now() - started < 2_000, 'returned without walking everything')
})
