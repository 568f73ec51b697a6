import t from 'tap'
import { blob, buildImage, MT } from '../helpers/oci-builder.js'
import { startProxy } from '../helpers/proxy.js'
import { json } from '../helpers/real-world.js'
import { startRegistry } from '../helpers/registry.js'
import { getManifest, pushBlob, putManifest } from '../helpers/registry-http.js'

// Sizes the proxy half saw. It once recorded what it saw of uploads as the blob's size and
// refused sound lists with "wrong size"; now nothing it sees of an upload stands in for the
// registry's word (existence and size are asked at push time). Each case runs the same
// requests straight to the registry and through the proxy.

async function chunkedUpload(bases: { start: string; patch: string; put: string }, repo: string, b: { bytes: Buffer; digest: string }): Promise<number> {
  const start = await fetch(`${bases.start}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  await start.arrayBuffer()
  const session = new URL(start.headers.get('location')!, bases.start)
  const patch = await fetch(`${bases.patch}${session.pathname}${session.search}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: b.bytes })
  await patch.arrayBuffer()
  const after = new URL(patch.headers.get('location')!, bases.patch)
  after.searchParams.set('digest', b.digest)
  const put = await fetch(`${bases.put}${after.pathname}${after.search}`, { method: 'PUT' })
  await put.arrayBuffer()
  return put.status
}

function imageWith(layer: { bytes: Buffer; digest: string }, seed: string) {
  const base = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed })
  const manifest = json(
    {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: base.config.mediaType, digest: base.config.digest, size: base.config.bytes.length },
      layers: [{ mediaType: MT.ociLayer, digest: layer.digest, size: layer.bytes.length }],
    },
    MT.ociManifest,
  )
  const index = json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: manifest.digest, size: manifest.bytes.length, platform: { os: 'linux', architecture: 'amd64' } }] }, MT.ociIndex)
  return { config: base.config, manifest, index }
}

t.test('empty blobs', async (t) => {
  const registry = await startRegistry()
  t.teardown(() => registry.stop())
  const proxy = await startProxy(registry.url)
  t.teardown(() => proxy.close())
  const empty = blob(Buffer.alloc(0), MT.ociLayer)
  const image = imageWith(empty, 'empty-blob')
  for (const [name, base] of [['direct', registry.url], ['proxied', proxy.url]] as const) {
    t.equal(await chunkedUpload({ start: base, patch: base, put: base }, `team/${name}`, empty), 201, `${name}: POST, empty PATCH, PUT ?digest=`)
    await pushBlob(base, `team/${name}`, image.config)
    t.equal((await putManifest(base, `team/${name}`, image.manifest.digest, image.manifest)).status, 201, `${name}: the child`)
    const res = await putManifest(base, `team/${name}`, '1.0', image.index)
    t.equal(res.status, 201, `${name}: a list naming a child with an empty layer is stored (${await res.text()})`)
    t.equal((await getManifest(registry.url, `team/${name}`, '1.0')).digest, image.index.digest)
  }
})

t.test('an upload split across replicas', async (t) => {
  const registry = await startRegistry()
  t.teardown(() => registry.stop())
  const a = await startProxy(registry.url)
  t.teardown(() => a.close())
  const b = await startProxy(registry.url)
  t.teardown(() => b.close())
  const layer = blob(Buffer.from('a layer uploaded half through one replica, half through another'), MT.ociLayer)
  const image = imageWith(layer, 'split-upload')
  // Behind a Service, the POST and the PATCH land on replica A, the final empty PUT on B.
  t.equal(await chunkedUpload({ start: a.url, patch: a.url, put: b.url }, 'team/app', layer), 201, 'the upload completes')
  await pushBlob(b.url, 'team/app', image.config)
  t.equal((await putManifest(b.url, 'team/app', image.manifest.digest, image.manifest)).status, 201, 'the child, through B')
  const res = await putManifest(b.url, 'team/app', '1.0', image.index)
  t.equal(res.status, 201, `replica B accepts the sound list (${await res.text()})`)
  t.equal(b.logs.find((r) => r['event'] === 'push.rejected').length, 0, 'never "wrong size … holds 0"')
})
