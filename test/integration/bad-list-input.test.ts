import t from 'tap'
import { buildImage, buildIndex, type BuiltIndex, MT, sha256 } from '../helpers/oci-builder.js'
import { rawRequest } from '../helpers/raw-http.js'
import { getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Bodies a list push must refuse with a clear 4xx OCI error, without harm to the process
// and without the registry ever seeing them.

t.test('bad list bodies get clear 4xx errors', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { validation: { maxDepth: 3, maxDescriptors: 20 } })
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'bad-input' })
  await pushImage(registry.url, 'team/app', amd)
  const good = buildIndex([amd])

  const wide = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      // 25 distinct children: distinct objects are what the limit counts.
      manifests: Array.from({ length: 25 }, (_, i) => ({ ...amd.descriptor, digest: sha256(Buffer.from(`child ${i}`)), platform: { os: 'linux', architecture: `arch${i}` } })),
    }),
  )
  // Nested indexes four deep, each pushed to the registry directly, the top through the proxy.
  let nested: BuiltIndex = buildIndex([amd], { platform: { os: 'linux', architecture: 'amd64' } })
  await putManifest(registry.url, 'team/app', nested.manifest.digest, nested.manifest)
  for (let i = 0; i < 3; i++) {
    nested = buildIndex([nested], { platform: { os: 'linux', architecture: 'amd64' } })
    await putManifest(registry.url, 'team/app', nested.manifest.digest, nested.manifest)
  }
  const deep = buildIndex([nested])

  const cases: { name: string; ref?: string; contentType?: string; body: Buffer; status: number; code: string; message: RegExp }[] = [
    { name: 'malformed JSON', body: Buffer.from('{"schemaVersion": 2, "manifests": ['), status: 400, code: 'MANIFEST_INVALID', message: /not valid JSON/ },
    { name: 'JSON that is not an object', body: Buffer.from('[1,2,3]'), status: 400, code: 'MANIFEST_INVALID', message: /not a JSON object/ },
    { name: 'not UTF-8 outside strings', body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), status: 400, code: 'MANIFEST_INVALID', message: /not valid JSON \(expected a string key/ },
    {
      name: 'duplicate keys',
      body: Buffer.from(`{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[],"manifests":[${JSON.stringify(amd.descriptor)}]}`),
      status: 400,
      code: 'MANIFEST_INVALID',
      message: /the body has the key "manifests" twice/,
    },
    {
      name: 'keys differing in case (Go reads both into one field)',
      body: Buffer.from(`{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[],"Manifests":[${JSON.stringify(amd.descriptor)}]}`),
      status: 400,
      code: 'MANIFEST_INVALID',
      message: /the body has the keys "manifests" and "Manifests", which the registry reads as the same field "manifests"/,
    },
    { name: 'Content-Type and body disagree', contentType: MT.dockerList, body: good.manifest.bytes, status: 400, code: 'MANIFEST_INVALID', message: /disagrees with the body's mediaType/ },
    {
      name: 'invalid digest in a descriptor',
      body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...amd.descriptor, digest: 'sha256:ABC' }] })),
      status: 400,
      code: 'MANIFEST_INVALID',
      message: /manifests\[0\]\.digest is not a valid digest/,
    },
    { name: 'digest in the URL does not match the body', ref: `sha256:${'0'.repeat(64)}`, body: good.manifest.bytes, status: 400, code: 'DIGEST_INVALID', message: /body's digest is sha256:/ },
    { name: 'over 4 MiB', body: Buffer.concat([Buffer.from('{"a":"'), Buffer.alloc(5 << 20, 0x61), Buffer.from('"}')]), status: 413, code: 'MANIFEST_INVALID', message: /larger than 4194304 bytes/ },
    { name: 'too wide', body: wide, status: 400, code: 'MANIFEST_INVALID', message: /more than 20 distinct manifests and blobs/ },
    { name: 'too deep', body: deep.manifest.bytes, status: 400, code: 'MANIFEST_INVALID', message: /nested indexes deeper than 3 levels/ },
  ]
  for (const [i, c] of cases.entries()) {
    const res = await rawRequest(proxy.url, 'PUT', `/v2/team/app/manifests/${c.ref ?? `bad${i}`}`, { 'content-type': c.contentType ?? MT.ociIndex }, c.body)
    const body = JSON.parse(res.body.toString()) as { errors: { code: string; message: string }[] }
    t.equal(res.status, c.status, `${c.name}: status`)
    t.match(res.headers['content-type'], /^application\/json/, `${c.name}: JSON`)
    t.equal(body.errors[0]?.code, c.code, `${c.name}: code`)
    t.match(body.errors[0]?.message, c.message, `${c.name}: message`)
    t.equal((await getManifest(registry.url, 'team/app', c.ref ?? `bad${i}`)).status, 404, `${c.name}: nothing stored`)
  }
  const health = await fetch(`${proxy.url}/healthz`)
  t.equal(health.status, 200, 'the process keeps serving')
  const ok = await putManifest(proxy.url, 'team/app', 'good', good.manifest)
  t.equal(ok.status, 201, 'and still takes good lists')
})
