import t from 'tap'
import { parseManifest } from '../../src/oci/manifest.js'
import { describeMediaType, isImageManifest, isIndex, isManifest, isNonDistributable, mediaTypeOf, MediaType } from '../../src/oci/media-type.js'
import { formatPlatform, isAttestationPlatform, parsePlatform, samePlatform } from '../../src/oci/platform.js'
import { parseReference, parseRegistryPath } from '../../src/oci/reference.js'
import { parseStrictJson } from '../../src/oci/strict-json.js'

const D = `sha256:${'a'.repeat(64)}`

t.test('strict JSON', async (t) => {
  const cases: { name: string; text: string | Buffer; problem?: RegExp }[] = [
    { name: 'plain object', text: '{"a":1,"b":[{"a":2}]}' },
    { name: 'same key in sibling objects is fine', text: '[{"a":1},{"a":2}]' },
    { name: 'escaped keys compared decoded', text: '{"a":1,"\\u0061":2}', problem: /duplicate key "a"/ },
    { name: 'duplicate nested', text: '{"x":{"k":1,"k":2}}', problem: /duplicate key "k"/ },
    { name: 'case-folded keys', text: '{"mediaType":"a","MediaType":"b"}', problem: /differing only in case/ },
    { name: 'annotations keep case', text: '{"annotations":{"A":"1","a":"2"}}' },
    { name: 'strings containing braces and quotes', text: '{"a":"{\\"b\\":1,\\"b\\":2}","c":"]"}' },
    { name: 'deep nesting', text: '['.repeat(100) + ']'.repeat(100), problem: /nested deeper than 64/ },
    { name: 'deep nesting, unbalanced', text: '['.repeat(100000), problem: /nested deeper than 64/ },
    { name: 'invalid JSON', text: '{"a":', problem: /not valid JSON/ },
    { name: 'bad UTF-8', text: Buffer.from([0x22, 0xc3, 0x28, 0x22]), problem: /not valid UTF-8/ },
  ]
  for (const c of cases) {
    const r = parseStrictJson(typeof c.text === 'string' ? Buffer.from(c.text) : c.text)
    if (c.problem === undefined) t.ok('value' in r, c.name)
    else t.match('problem' in r ? r.problem : '', c.problem, c.name)
  }
})

t.test('manifests keep their raw bytes and digest', async (t) => {
  const raw = Buffer.from(`{"schemaVersion":2,"mediaType":"${MediaType.OciIndex}","manifests":[{"mediaType":"${MediaType.OciManifest}","digest":"${D}","size":10,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}`)
  const m = parseManifest(raw, MediaType.OciIndex)
  if ('problem' in m || m.kind !== 'index') return t.fail('expected an index')
  t.equal(m.raw, raw, 'the very same Buffer')
  t.match(m.digest, /^sha256:[a-f0-9]{64}$/)
  t.equal(formatPlatform(m.manifests[0]!.platform), 'linux/arm64/v8')
})

t.test('manifest kinds and problems', async (t) => {
  const idx = (extra: object) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], ...extra }))
  const cases: { name: string; raw: Buffer; contentType?: string; expect: string | RegExp }[] = [
    { name: 'index by content type', raw: idx({}), contentType: MediaType.OciIndex, expect: 'index' },
    { name: 'index by body when content type is generic', raw: idx({}), contentType: 'application/json', expect: 'index' },
    { name: 'index by shape when nothing says', raw: Buffer.from('{"schemaVersion":2,"manifests":[]}'), expect: 'index' },
    { name: 'image', raw: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: { mediaType: MediaType.DockerConfig, digest: D, size: 1 }, layers: [] })), expect: 'image' },
    { name: 'schema 1 is opaque', raw: Buffer.from('{"schemaVersion":1,"name":"x"}'), contentType: MediaType.DockerManifestV1Signed, expect: 'opaque' },
    { name: 'content type disagrees', raw: idx({}), contentType: MediaType.DockerManifestList, expect: /disagrees/ },
    { name: 'wrong schemaVersion', raw: idx({ schemaVersion: 1 }), expect: /schemaVersion must be 2/ },
    { name: 'manifests not an array', raw: idx({ manifests: {} }), expect: /manifests must be an array/ },
    { name: 'bad descriptor size', raw: idx({ manifests: [{ mediaType: 'x', digest: D, size: -1 }] }), expect: /manifests\[0\]\.size/ },
    { name: 'bad platform', raw: idx({ manifests: [{ mediaType: 'x', digest: D, size: 1, platform: { os: 1 } }] }), expect: /platform needs/ },
    { name: 'bad urls', raw: idx({ manifests: [{ mediaType: 'x', digest: D, size: 1, urls: [1] }] }), expect: /urls must be/ },
    { name: 'bad subject', raw: idx({ subject: { mediaType: 'x' } }), expect: /subject\.digest/ },
    { name: 'no kind at all: left to the registry', raw: Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), contentType: 'application/json', expect: 'opaque' },
  ]
  for (const c of cases) {
    const m = parseManifest(c.raw, c.contentType)
    const got = 'problem' in m ? m.problem : m.kind
    if (typeof c.expect === 'string') t.equal(got, c.expect, c.name)
    else t.match(got, c.expect, c.name)
  }
})

t.test('media types', async (t) => {
  t.ok(isIndex(MediaType.DockerManifestList) && isIndex(MediaType.OciIndex))
  t.notOk(isIndex(MediaType.OciManifest))
  t.ok(isImageManifest(MediaType.DockerManifest) && isManifest(MediaType.DockerManifestV1Signed))
  t.ok(isNonDistributable(MediaType.DockerForeignLayer) && !isNonDistributable(MediaType.OciLayerGzip))
  t.equal(mediaTypeOf('Application/JSON; charset=utf-8'), 'application/json')
  t.equal(mediaTypeOf(''), undefined)
  t.equal(describeMediaType(MediaType.OciIndex), 'OCI image index')
})

t.test('platforms', async (t) => {
  t.equal(parsePlatform({ os: 'linux' }), undefined)
  t.same(parsePlatform({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' }), { os: 'windows', architecture: 'amd64', osVersion: '10.0.17763' })
  t.ok(isAttestationPlatform({ os: 'unknown', architecture: 'unknown' }))
  t.ok(samePlatform({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: '' } as never))
  t.notOk(samePlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' }))
  t.equal(formatPlatform(undefined), 'no platform')
})

t.test('references and registry paths', async (t) => {
  t.same(parseReference('v1.0'), { kind: 'tag', tag: 'v1.0' })
  t.same(parseReference(D), { kind: 'digest', digest: D })
  t.equal(parseReference('-bad'), undefined)
  const cases: { path: string; kind: string; name?: string }[] = [
    { path: '/v2/', kind: 'other' },
    { path: '/v2/team/app/manifests/1.0', kind: 'manifest', name: 'team/app' },
    { path: '/v2/team/manifests/app/manifests/1.0', kind: 'manifest', name: 'team/manifests/app' },
    { path: `/v2/a/blobs/${D}`, kind: 'blob', name: 'a' },
    { path: '/v2/a/blobs/uploads/', kind: 'upload', name: 'a' },
    { path: '/v2/a/blobs/uploads/uuid-1', kind: 'upload', name: 'a' },
    { path: '/v2/a/tags/list', kind: 'tags', name: 'a' },
    { path: '/v2/A/manifests/1', kind: 'bad-manifest' },
    { path: `/v2/${'a'.repeat(300)}/manifests/1`, kind: 'bad-manifest' },
    { path: '/v2/a/manifests/-tag', kind: 'bad-manifest' },
    { path: '/v2/a/%2e%2e/b/manifests/1', kind: 'invalid' },
    { path: '/v2/a/manifests%2F1', kind: 'invalid' },
    { path: '/v2/a/../b/manifests/1', kind: 'invalid' },
    { path: '/v2/a/manifests/%E0%A4%A', kind: 'invalid' },
    { path: `/v2/a/blobs/sha256%3A${'a'.repeat(64)}`, kind: 'blob', name: 'a' },
    { path: '/v3/a/manifests/1', kind: 'other' },
  ]
  for (const c of cases) {
    const p = parseRegistryPath(c.path)
    t.equal(p.kind, c.kind, c.path.slice(0, 60))
    if (c.name !== undefined) t.equal((p as { name: string }).name, c.name)
  }
})
