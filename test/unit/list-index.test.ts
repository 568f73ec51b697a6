import t from 'tap'
import { loadConfig } from '../../src/config/load.js'
import { ListIndex } from '../../src/ledger/list-index.js'
import type { Digest } from '../../src/oci/digest.js'
import { parseManifest } from '../../src/oci/manifest.js'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'

// The delete guard's reverse index, and the settings of part 17.

const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'li', layerCount: 2 })
const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'li' })
const inner = buildIndex([arm])
const outer = buildIndex([amd, inner])
const bodies = new Map<string, Buffer>([amd.manifest, arm.manifest, inner.manifest].map((m) => [m.digest, m.bytes]))
const parsed = (b: Buffer) => {
  const m = parseManifest(b, undefined)
  if ('problem' in m) throw new Error(m.problem)
  return m
}

t.test('names children, nested children and their blobs; forgets', async (t) => {
  const index = new ListIndex(10)
  index.recordList('r', '1.0', outer.manifest.digest as Digest, parsed(outer.manifest.bytes), (d) => bodies.get(d))
  for (const d of [amd.manifest.digest, amd.config.digest, amd.layers[1]!.digest, inner.manifest.digest, arm.manifest.digest, arm.layers[0]!.digest]) {
    t.same(
      index.listsNaming('r', d as Digest).map((l) => l.digest),
      [outer.manifest.digest],
      d,
    )
  }
  t.same(index.listsNaming('other', amd.manifest.digest as Digest), [], 'per repository')
  t.same(index.listsNaming('r', outer.manifest.digest as Digest), [], 'a list does not name itself')
  const [list] = index.listsNaming('r', amd.manifest.digest as Digest)
  index.recordList('r', 'stable', outer.manifest.digest as Digest, parsed(outer.manifest.bytes), (d) => bodies.get(d))
  t.same([...list!.tags].sort(), ['1.0', 'stable'])
  index.untag(list!, '1.0')
  t.ok(index.has('r', outer.manifest.digest as Digest))
  index.untag(list!, 'stable')
  t.notOk(index.has('r', outer.manifest.digest as Digest))
  t.same(index.listsNaming('r', amd.manifest.digest as Digest), [], 'reverse entries dropped with the list')
})

t.test('bounded: the least recently pushed list is forgotten, with its reverse entries', async (t) => {
  const index = new ListIndex(2)
  const lists = [0, 1, 2].map((i) => buildIndex([buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: `li-${i}` })]))
  for (const [i, l] of lists.entries()) index.recordList('r', `v${i}`, l.manifest.digest as Digest, parsed(l.manifest.bytes), () => undefined)
  t.equal(index.size, 2)
  t.same(index.listsNaming('r', lists[0]!.descriptor.digest as Digest), [])
  const firstChild = JSON.parse(lists[0]!.manifest.bytes.toString()).manifests[0].digest as Digest
  const lastChild = JSON.parse(lists[2]!.manifest.bytes.toString()).manifests[0].digest as Digest
  t.same(index.listsNaming('r', firstChild), [])
  t.equal(index.listsNaming('r', lastChild).length, 1)
})

t.test('settings: required platforms and platform mismatch, globally and per rule', async (t) => {
  const c = loadConfig({ values: { upstream: 'http://127.0.0.1:5000', validation: { requiredPlatforms: 'linux/amd64, linux/arm/v7', rules: [{ match: 'mirror/**', platformMismatch: 'warn', requiredPlatforms: [] }] } } })
  t.same(c.validation.requiredPlatforms, ['linux/amd64', 'linux/arm/v7'])
  t.same(c.validation.rules, [{ match: 'mirror/**', platformMismatch: 'warn', requiredPlatforms: [] }])
  t.equal(c.validation.platformMismatch, 'reject')
  t.equal(c.deleteGuard.enabled, true)
  t.throws(() => loadConfig({ values: { upstream: 'http://127.0.0.1:5000', validation: { requiredPlatforms: ['amd64'] } } }), /os\/arch/)
  t.throws(() => loadConfig({ values: { upstream: 'http://127.0.0.1:5000', validation: { rules: [{ match: 'x', requiredPlatforms: ['linux'] }] } } }), /requiredPlatforms/)
  t.throws(() => loadConfig({ values: { upstream: 'http://127.0.0.1:5000', validation: { rules: [{ match: 'x', platformMismatch: 'maybe' }] } } }), /platformMismatch/)
})
