import t from 'tap'
import { blob, buildImage, MT } from '../helpers/oci-builder.js'
import { json } from '../helpers/real-world.js'
import { getManifest, pushBlob, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Sizes the proxy half saw. It once recorded what it saw of uploads as the blob's size and
// refused sound lists with "wrong size": an empty blob as 1 byte (distribution answers the
// empty PATCH with Range 0-0), an upload finished through another replica as 0 bytes. Now
// nothing it sees of an upload stands in for the registry's word (existence and size are
// asked at push time). Each case runs the same requests straight to the registry and through
// the proxy, and asserts the same answers and the same stored list.

type Blob = { bytes: Buffer; digest: string }

/** Where each request of an upload goes: the registry itself, or one of two replicas. */
interface Route {
  readonly start: string
  readonly patch: string
  readonly put: string
}

/** The ways clients upload, each a list of the statuses the registry answered. */
const UPLOADS = {
  // POST, PATCH with the data (none for an empty blob), PUT ?digest= with no body: most clients.
  chunked: async (route: Route, repo: string, b: Blob): Promise<number[]> => {
    const start = await fetch(`${route.start}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    await start.arrayBuffer()
    const session = new URL(start.headers.get('location')!, route.start)
    const patch = await fetch(`${route.patch}${session.pathname}${session.search}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: b.bytes })
    await patch.arrayBuffer()
    const after = new URL(patch.headers.get('location')!, route.patch)
    after.searchParams.set('digest', b.digest)
    const put = await fetch(`${route.put}${after.pathname}${after.search}`, { method: 'PUT' })
    await put.arrayBuffer()
    return [start.status, patch.status, put.status]
  },
  // POST, PATCH with the first half, PUT ?digest= with the rest: the final PUT carries data.
  'chunked, rest in the PUT': async (route: Route, repo: string, b: Blob): Promise<number[]> => {
    const half = b.bytes.length >> 1
    const start = await fetch(`${route.start}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    await start.arrayBuffer()
    const session = new URL(start.headers.get('location')!, route.start)
    const patch = await fetch(`${route.patch}${session.pathname}${session.search}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: b.bytes.subarray(0, half) })
    await patch.arrayBuffer()
    const after = new URL(patch.headers.get('location')!, route.patch)
    after.searchParams.set('digest', b.digest)
    const put = await fetch(`${route.put}${after.pathname}${after.search}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: b.bytes.subarray(half) })
    await put.arrayBuffer()
    return [start.status, patch.status, put.status]
  },
  // POST, then the whole blob in the PUT: skopeo, containers/image.
  monolithic: async (route: Route, repo: string, b: Blob): Promise<number[]> => {
    const start = await fetch(`${route.start}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    await start.arrayBuffer()
    const session = new URL(start.headers.get('location')!, route.start)
    session.searchParams.set('digest', b.digest)
    const put = await fetch(`${route.put}${session.pathname}${session.search}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: b.bytes })
    await put.arrayBuffer()
    return [start.status, put.status]
  },
  // (The spec's single POST ?digest= with the blob is left out: distribution 2.8 ignores the
  // body and opens a session, so the blob never exists either way.)
} as const

function imageWith(layer: Blob, seed: string) {
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

interface Outcome {
  readonly upload: number[]
  readonly child: number
  readonly list: number
  readonly stored: string | null | undefined
}

/** Uploads the layer as `route` says, then pushes the child and the list through `push`. */
async function uploadThenPush(registryUrl: string, route: Route, push: string, repo: string, upload: keyof typeof UPLOADS, image: ReturnType<typeof imageWith>, layer: Blob): Promise<Outcome> {
  const statuses = await UPLOADS[upload](route, repo, layer)
  await pushBlob(push, repo, image.config)
  const child = await putManifest(push, repo, image.manifest.digest, image.manifest)
  await child.arrayBuffer()
  const list = await putManifest(push, repo, '1.0', image.index)
  await list.arrayBuffer()
  const stored = list.status === 201 ? (await getManifest(registryUrl, repo, '1.0')).digest : undefined
  return { upload: statuses, child: child.status, list: list.status, stored }
}

t.test('empty blobs', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const empty = blob(Buffer.alloc(0), MT.ociLayer)
  const image = imageWith(empty, 'empty-blob')
  for (const [i, upload] of (['chunked', 'monolithic'] as const).entries()) {
    const straight = { start: registry.url, patch: registry.url, put: registry.url }
    const through = { start: proxy.url, patch: proxy.url, put: proxy.url }
    const direct = await uploadThenPush(registry.url, straight, registry.url, `direct/e${i}`, upload, image, empty)
    const proxied = await uploadThenPush(registry.url, through, proxy.url, `proxied/e${i}`, upload, image, empty)
    t.same(proxied, direct, `${upload}: the same answers through the proxy (${JSON.stringify(direct)})`)
    t.match(direct, { list: 201, stored: image.index.digest }, `${upload}: a list naming a child with an empty layer is stored`)
  }
  t.equal(proxy.logs.find((r) => r['event'] === 'push.rejected').length, 0, 'never "wrong size … holds 1"')
})

t.test('an upload split across replicas', async (t) => {
  const registry = await registryFor(t)
  const a = await proxyFor(t, registry.url)
  const b = await proxyFor(t, registry.url)
  const layer = blob(Buffer.from('a layer uploaded half through one replica, half through another'), MT.ociLayer)
  const image = imageWith(layer, 'split-upload')
  // Behind a Service, each request of an upload may land on either replica; B pushes the list.
  const splits: { name: string; route: Route }[] = [
    { name: 'POST and PATCH on A, the final PUT on B', route: { start: a.url, patch: a.url, put: b.url } },
    { name: 'POST on B, PATCH on A, the final PUT on B', route: { start: b.url, patch: a.url, put: b.url } },
    { name: 'POST on A, PATCH and the final PUT on B', route: { start: a.url, patch: b.url, put: b.url } },
  ]
  let n = 0
  for (const split of splits) {
    for (const upload of ['chunked', 'chunked, rest in the PUT'] as const) {
      n++
      const straight = { start: registry.url, patch: registry.url, put: registry.url }
      const direct = await uploadThenPush(registry.url, straight, registry.url, `direct/s${n}`, upload, image, layer)
      const proxied = await uploadThenPush(registry.url, split.route, b.url, `proxied/s${n}`, upload, image, layer)
      t.same(proxied, direct, `${upload}, ${split.name}: the same answers as straight to the registry (${JSON.stringify(direct)})`)
      t.match(direct, { list: 201, stored: image.index.digest }, `${upload}: the sound list is stored`)
    }
  }
  t.equal(b.logs.find((r) => r['event'] === 'push.rejected').length, 0, 'never "wrong size … holds 0"')
})
