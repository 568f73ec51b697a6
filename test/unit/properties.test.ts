import fc from 'fast-check'
import t from 'tap'
import { digestOf } from '../../src/oci/digest.js'
import { parseManifest } from '../../src/oci/manifest.js'
import { isRepositoryName, parseRegistryPath } from '../../src/oci/reference.js'
import { isJsonNumber, isJsonObject, type JsonValue, parseJsonTree } from '../../src/oci/json-tree.js'
import { walkIndex } from '../../src/validate/walk.js'
import { buildImage, buildIndex, MT } from '../helpers/oci-builder.js'
import { MemorySource } from '../helpers/memory-source.js'

// Properties of the parser and the walk, over generated input (fast-check).

const RUNS = 300

/** A tree as JSON.parse would see it: the last of equal keys wins. No prototype, so that a
 *  "__proto__" key is an own member, as JSON.parse makes it, not a prototype change. */
function plain(v: JsonValue): unknown {
  if (Array.isArray(v)) return v.map(plain)
  if (isJsonObject(v)) {
    const out = Object.create(null) as Record<string, unknown>
    for (const [k, x] of v.members) out[k] = plain(x)
    return out
  }
  if (isJsonNumber(v)) return Number(v.literal)
  return v
}

t.test('the JSON tree agrees with JSON.parse on every JSON document', async (t) => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => {
      const text = JSON.stringify(value)
      const r = parseJsonTree(Buffer.from(text))
      return 'value' in r && JSON.stringify(plain(r.value)) === JSON.stringify(JSON.parse(text))
    }),
    { numRuns: RUNS },
  )
  t.pass('agrees')
})

t.test('a "__proto__" key is an ordinary member, as JSON.parse and Go read it', async (t) => {
  const text = '{"__proto__":{"polluted":1},"x":[{"__proto__":0}]}'
  const r = parseJsonTree(Buffer.from(text))
  t.ok('value' in r, 'parsed')
  if (!('value' in r)) return
  t.equal(JSON.stringify(plain(r.value)), JSON.stringify(JSON.parse(text)), 'same members as JSON.parse')
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'no prototype touched')
})

t.test('the JSON tree refuses exactly what JSON.parse refuses', async (t) => {
  // Text near JSON: documents with a character replaced, dropped or added.
  const nearJson = fc
    .tuple(fc.jsonValue({ maxDepth: 4 }), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', '0', '-', '\\', ' ', 'e'))
    .map(([v, at, ch]) => {
      const text = JSON.stringify(v)
      const i = at % (text.length + 1)
      return text.slice(0, i) + ch + text.slice(i + (at % 2))
    })
  fc.assert(
    fc.property(nearJson, (text) => {
      let valid = true
      try {
        JSON.parse(text)
      } catch {
        valid = false
      }
      return valid === 'value' in parseJsonTree(Buffer.from(text))
    }),
    { numRuns: RUNS * 3 },
  )
  t.pass('same verdict')
})

t.test('every repeated key is kept, wherever it is', async (t) => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), fc.string({ minLength: 1, maxLength: 8 }).filter((k) => /^[a-z]+$/.test(k)), (value, key) => {
      const r = parseJsonTree(Buffer.from(`{"${key}":1,"wrap":${JSON.stringify(value)},"${key}":2}`))
      return 'value' in r && isJsonObject(r.value) && r.value.members.filter(([k]) => k === key).length === 2
    }),
    { numRuns: RUNS },
  )
  t.pass('always kept')
})

t.test('the parsers never throw, whatever the bytes', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.constantFrom(undefined, MT.ociIndex, MT.dockerList, 'application/json'), (bytes, contentType) => {
      const buf = Buffer.from(bytes)
      parseJsonTree(buf)
      const m = parseManifest(buf, contentType)
      return 'problem' in m || m.digest === digestOf(buf)
    }),
    { numRuns: RUNS },
  )
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) => {
      parseJsonTree(Buffer.from(s))
      const p = parseRegistryPath(`/v2/${s}`)
      return p.kind !== 'manifest' || isRepositoryName(p.name)
    }),
    { numRuns: RUNS },
  )
  t.pass('no throw')
})

t.test('a parsed index keeps its entries and its exact bytes', async (t) => {
  const descriptor = fc.record({
    mediaType: fc.constantFrom(MT.ociManifest, MT.dockerManifest, MT.ociIndex),
    digest: fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`),
    size: fc.nat(),
    platform: fc.option(fc.record({ os: fc.constantFrom('linux', 'windows'), architecture: fc.constantFrom('amd64', 'arm64', 'arm') }), { nil: undefined }),
  })
  fc.assert(
    fc.property(fc.array(descriptor, { maxLength: 40 }), fc.constantFrom(MT.ociIndex, MT.dockerList), (entries, mediaType) => {
      const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: entries }))
      const m = parseManifest(raw, mediaType)
      return !('problem' in m) && m.kind === 'index' && m.manifests.length === entries.length && m.raw === raw && m.digest === digestOf(raw)
    }),
    { numRuns: RUNS },
  )
  t.pass('kept')
})

t.test('the walk reports exactly what is missing, and never throws', async (t) => {
  const images = Array.from({ length: 6 }, (_, i) => buildImage({ platform: { os: 'linux', architecture: `a${i}` }, seed: 'prop', layerCount: 3 }))
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
      fc.array(fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), { minLength: 6, maxLength: 6 }),
      fc.integer({ min: 1, max: 8 }),
      async (childPresent, blobPresent, concurrency) => {
        const source = new MemorySource()
        images.forEach((image, i) => {
          if (!childPresent[i]) return
          source.manifests.set(`r@${image.manifest.digest}`, image.manifest)
          ;[image.config, ...image.layers].forEach((b, j) => {
            if (blobPresent[i]![j]) source.blobs.set(`r@${b.digest}`, b.bytes.length)
          })
        })
        const index = parseManifest(buildIndex(images).manifest.bytes, MT.ociIndex)
        if ('problem' in index || index.kind !== 'index') return false
        const result = await walkIndex({ repository: 'r', index, source, limits: { maxDepth: 4, maxDescriptors: 1000, concurrency, timeoutMs: 5000 }, ctx: { authorization: undefined } })
        const missingChildren = childPresent.filter((p) => !p).length
        const missingBlobs = childPresent.reduce((n, present, i) => n + (present ? blobPresent[i]!.filter((b) => !b).length : 0), 0)
        return (
          result.findings.filter((f) => f.kind === 'child-missing').length === missingChildren &&
          result.findings.filter((f) => f.kind === 'blob-missing').length === missingBlobs &&
          result.findings.length === missingChildren + missingBlobs &&
          result.presentChildren.length === 6 - missingChildren &&
          source.maxInFlight <= concurrency
        )
      },
    ),
    { numRuns: 150 },
  )
  t.pass('exact')
})
