import t from 'tap'
import { parseManifest } from '../../src/oci/manifest.js'
import { describeMediaType, isImageManifest, isIndex, isManifest, isNonDistributable, mediaTypeOf, MediaType } from '../../src/oci/media-type.js'
import { formatPlatform, isAttestationPlatform, parsePlatform, platformKey, samePlatform } from '../../src/oci/platform.js'
import { parseReference, parseRegistryPath } from '../../src/oci/reference.js'
import { ANY, decodeStruct, foldKey, GoDecodeProblem, INT64, MAP, STRING, STRINGS, structs } from '../../src/oci/go-struct.js'
import { parseJsonTree } from '../../src/oci/json-tree.js'

const D = `sha256:${'a'.repeat(64)}`

t.test('JSON tree: RFC 8259 as Go reads it, every member kept', async (t) => {
  const cases: { name: string; text: string | Buffer; value?: unknown; problem?: RegExp }[] = [
    { name: 'plain object', text: '{"a":1,"b":[{"a":2}]}', value: { kind: 'object', members: [['a', { kind: 'number', literal: '1' }], ['b', [{ kind: 'object', members: [['a', { kind: 'number', literal: '2' }]] }]]] } },
    { name: 'duplicate keys are kept, in order', text: '{"a":true,"a":null}', value: { kind: 'object', members: [['a', true], ['a', null]] } },
    { name: 'escaped keys decoded', text: '{"\\u0061\\u017f":"x"}', value: { kind: 'object', members: [['aſ', 'x']] } },
    { name: 'numbers keep their literal', text: '[1.0,-0,2e3]', value: [{ kind: 'number', literal: '1.0' }, { kind: 'number', literal: '-0' }, { kind: 'number', literal: '2e3' }] },
    { name: 'strings containing braces and quotes', text: '{"a":"{\\"b\\":1}","c":"]"}', value: { kind: 'object', members: [['a', '{"b":1}'], ['c', ']']] } },
    { name: 'invalid UTF-8 in a string reads as U+FFFD, as in Go', text: Buffer.from([0x22, 0xc3, 0x28, 0x22]), value: '\ufffd(' },
    { name: '9 999 levels deep is still JSON to Go', text: '['.repeat(9_999) + ']'.repeat(9_999) },
    { name: 'deeper than Go reads', text: '['.repeat(10_001) + ']'.repeat(10_001), problem: /nested deeper than 10000/ },
    { name: 'unbalanced', text: '['.repeat(100_000), problem: /nested deeper|end of input/ },
    { name: 'truncated', text: '{"a":', problem: /not valid JSON/ },
    { name: 'trailing comma', text: '{"a":1,}', problem: /expected a string key/ },
    { name: 'trailing data', text: '{} {}', problem: /after the JSON value/ },
    { name: 'byte order mark (Go refuses it)', text: '\ufeff{}', problem: /unexpected character at offset 0/ },
    { name: 'raw control character in a string', text: '"a\tb"', problem: /control character/ },
    { name: 'leading zero', text: '01', problem: /after the JSON value/ },
    { name: 'bad escape', text: '"\\x"', problem: /invalid escape/ },
  ]
  for (const c of cases) {
    const r = parseJsonTree(typeof c.text === 'string' ? Buffer.from(c.text) : c.text)
    if (c.problem !== undefined) t.match('problem' in r ? r.problem : 'parsed', c.problem, c.name)
    else if (c.value !== undefined) t.same('value' in r ? r.value : r.problem, c.value, c.name)
    else t.ok('value' in r, c.name)
  }
})

t.test('Go struct decoding: folded keys, null, types and collisions', async (t) => {
  const schema = { manifests: structs({ digest: STRING, size: INT64, urls: STRINGS, annotations: MAP }), mediaType: STRING, os: STRING, config: ANY }
  const decode = (text: string): unknown => {
    const tree = parseJsonTree(Buffer.from(text))
    if ('problem' in tree) return tree.problem
    try {
      return decodeStruct(tree.value, schema, '')
    } catch (err) {
      if (err instanceof GoDecodeProblem) return err.message
      throw err
    }
  }
  const cases: { name: string; text: string; expect: unknown }[] = [
    { name: 'exact keys', text: '{"mediaType":"x","os":"linux"}', expect: { mediaType: 'x', os: 'linux' } },
    { name: 'ASCII case folds', text: '{"MEDIATYPE":"x","Os":"linux"}', expect: { mediaType: 'x', os: 'linux' } },
    { name: 'long s folds to s', text: '{"manife\u017fts":[{"digeſt":"d","ſize":3}],"o\u017f":"linux"}', expect: { manifests: [{ digest: 'd', size: 3n }], os: 'linux' } },
    { name: 'Kelvin sign is not an s', text: '{"manife\u212ats":[]}', expect: {} },
    { name: 'unknown keys ignored, whatever their type', text: '{"x":{"y":[1,{"z":null}]},"manifestss":5}', expect: {} },
    { name: 'null leaves zero values', text: '{"manifests":null,"mediaType":null,"config":null}', expect: {} },
    { name: 'null element of a struct slice is a zero struct', text: '{"manifests":[null]}', expect: { manifests: [{}] } },
    { name: 'null string element is empty', text: '{"manifests":[{"urls":[null,"u"]}]}', expect: { manifests: [{ urls: ['', 'u'] }] } },
    { name: 'map keys are exact and the last wins', text: '{"manifests":[{"annotations":{"A":"1","a":"2","a":"3"}}]}', expect: { manifests: [{ annotations: { A: '1', a: '3' } }] } },
    { name: 'interface{} only says it is set', text: '{"config":{"anything":1}}', expect: { config: true } },
    { name: 'same key twice', text: '{"os":"a","os":"b"}', expect: 'the body has the key "os" twice' },
    { name: 'keys Go folds into one field', text: '{"manifests":[],"manifeſts":[{"digest":"d"}]}', expect: 'the body has the keys "manifests" and "manifeſts", which the registry reads as the same field "manifests"' },
    { name: 'collision inside a descriptor', text: '{"manifests":[{"digest":"a","Digest":"b"}]}', expect: 'manifests[0] has the keys "digest" and "Digest", which the registry reads as the same field "digest"' },
    { name: 'a string where a number belongs', text: '{"manifests":[{"size":"3"}]}', expect: 'manifests[0].size must be an integer' },
    { name: 'a fraction is no integer to Go', text: '{"manifests":[{"size":3.0}]}', expect: 'manifests[0].size must be an integer' },
    { name: 'past int64', text: '{"manifests":[{"size":9223372036854775808}]}', expect: 'manifests[0].size must be an integer that fits in 64 bits' },
    { name: 'an object where an array belongs', text: '{"manifests":{}}', expect: 'manifests must be an array of objects' },
    { name: 'a number in a map of strings', text: '{"manifests":[{"annotations":{"a":1}}]}', expect: 'manifests[0].annotations["a"] must be a string' },
  ]
  for (const c of cases) t.same(decode(c.text), c.expect, c.name)
  t.equal(foldKey('MANIFEſTS'), 'manifests')
  t.equal(foldKey('\u212aey'), 'key')
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
    { name: 'manifests not an array', raw: idx({ manifests: {} }), expect: /manifests must be an array of objects/ },
    { name: 'manifests null is an empty list (a Go nil slice)', raw: idx({ manifests: null }), expect: 'index' },
    { name: 'manifests missing is an empty list', raw: Buffer.from(`{"schemaVersion":2,"mediaType":"${MediaType.OciIndex}"}`), contentType: MediaType.OciIndex, expect: 'index' },
    { name: 'an entry without a media type', raw: idx({ manifests: [{ digest: D, size: 1 }] }), expect: 'index' },
    { name: 'bad descriptor size', raw: idx({ manifests: [{ mediaType: 'x', digest: D, size: -1 }] }), expect: /manifests\[0\]\.size/ },
    { name: 'bad platform', raw: idx({ manifests: [{ mediaType: 'x', digest: D, size: 1, platform: { os: 1 } }] }), expect: /manifests\[0\]\.platform\.os must be a string/ },
    { name: 'bad urls', raw: idx({ manifests: [{ mediaType: 'x', digest: D, size: 1, urls: [1] }] }), expect: /urls\[0\] must be a string/ },
    { name: 'an unusable subject is dropped (the registry ignores it)', raw: idx({ subject: { mediaType: 'x' } }), expect: 'index' },
    { name: 'an OCI index with layers (the registry refuses it)', raw: idx({ layers: [] }), expect: /must not have "config" or "layers"/ },
    { name: 'an OCI index with layers: null (the registry takes it)', raw: idx({ layers: null }), expect: 'index' },
    { name: 'a Docker list with layers (the registry takes it)', raw: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [], layers: [] })), expect: 'index' },
    { name: 'folded mediaType decides the kind', raw: Buffer.from(`{"schemaVersion":2,"MediaType":"${MediaType.OciIndex}","manifests":[]}`), expect: 'index' },
    { name: 'keys colliding under Go folding', raw: Buffer.from(`{"schemaVersion":2,"mediaType":"${MediaType.OciIndex}","manifests":[],"manifeſts":[]}`), expect: /reads as the same field "manifests"/ },
    { name: 'an image with layers: null (a Go nil slice)', raw: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: D, size: 1 }, layers: null })), expect: 'image' },
    { name: 'an image without layers', raw: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: D, size: 1 } })), expect: 'image' },
    { name: 'a byte order mark', raw: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), idx({})]), contentType: MediaType.OciIndex, expect: /not valid JSON/ },
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
  t.not(platformKey({ os: 'linux', architecture: 'amd64' }), platformKey({ os: 'linux', architecture: 'amd64', features: ['sse4'] }), 'features make another platform')
  t.not(platformKey({ os: 'windows', architecture: 'amd64', osVersion: '10.0.17763' }), platformKey({ os: 'windows', architecture: 'amd64', osVersion: '10.0.20348' }))
  t.equal(platformKey({ os: 'linux', architecture: 'arm64', osFeatures: ['b', 'a'] }), platformKey({ os: 'linux', architecture: 'arm64', osFeatures: ['a', 'b'] }))
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
