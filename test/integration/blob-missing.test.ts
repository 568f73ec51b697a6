import t from 'tap'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { errorsOf, getManifest, pushChildren, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Cause 4: a child manifest is still there but one of its layers is gone (retention or GC ran
// against the registry). distribution checks only that children exist, so it takes the list
// and every pull of that platform fails later. The proxy names the layer and the platform.

t.test('a child whose layer was removed from the repository', async (t) => {
  const registry = await registryFor(t)
  const amd64 = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'layers', layerCount: 2 })
  const arm64 = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'layers', layerCount: 3 })
  const index = buildIndex([amd64, arm64])

  // The children go through one proxy, which remembers them...
  const first = await proxyFor(t, registry.url)
  await pushChildren(first.url, 'team/app', index)
  // ...then a layer is deleted behind its back, directly in the registry.
  const gone = arm64.layers[1]!
  const del = await fetch(`${registry.url}/v2/team/app/blobs/${gone.digest}`, { method: 'DELETE' })
  t.equal(del.status, 202, 'layer deleted from the repository')

  const direct = await putManifest(registry.url, 'team/app', 'direct', index.manifest)
  t.equal(direct.status, 201, 'the registry alone accepts the list')

  // A proxy whose cache has not seen the push (a restart, or after cache.ttlSeconds).
  const proxy = await proxyFor(t, registry.url)
  const res = await putManifest(proxy.url, 'team/app', '1.0', index.manifest)
  t.equal(res.status, 400, 'rejected through the proxy')
  t.match(res.headers.get('content-type'), /^application\/json/)
  const errors = await errorsOf(res)
  t.equal(errors.length, 1, 'one problem, one error')
  t.equal(errors[0]!.code, 'MANIFEST_BLOB_UNKNOWN')
  t.match(errors[0]!.message, `layer ${gone.digest} (layer 2) of the linux/arm64 child ${arm64.manifest.digest.slice(0, 19)}`, 'names the layer, its place and the platform')
  t.match(errors[0]!.message, 'the registry would accept the list and pulls would fail')
  t.match(errors[0]!.detail, { cause: 'blob-missing', object: 'layer', digest: gone.digest, platforms: ['linux/arm64'], parents: [arm64.manifest.digest] })
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).status, 404)

  t.test('the same with a cache that has seen the layer but believes nothing for long (ttl 0)', async (t) => {
    const noCache = await proxyFor(t, registry.url, { cache: { ttlSeconds: 0 } })
    const again = await putManifest(noCache.url, 'team/app', '1.1', index.manifest)
    t.equal(again.status, 400)
  })
})
