import t from 'tap'
import { blob, buildImage, buildIndex, MT } from '../helpers/oci-builder.js'
import { rawRequest } from '../helpers/raw-http.js'
import { json } from '../helpers/real-world.js'
import { errorsOf, getManifest, pushBlob, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// One reading of every push: the proxy decides on exactly what the registry will store. Each
// case is sent straight to a real registry (distribution 2.8.2), which stores a list whose
// child has lost a layer, and through the proxy, which must refuse it; what the registry then
// holds is read back both times.

/** Header bytes as a hostile client sends them: UTF-8 on the wire (Node writes latin1 strings byte for byte). */
const wire = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

const errorBody = (body: Buffer): { code: string; message: string }[] => (JSON.parse(body.toString()) as { errors: { code: string; message: string }[] }).errors

t.test('Content-Types that Go folds into a list type', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'go-folds', layerCount: 2 })
  await pushImage(registry.url, 'team/app', arm)
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${arm.layers[1]!.digest}`, { method: 'DELETE' })).status, 202, 'a layer of the child deleted')
  const oci = buildIndex([arm]).manifest
  const docker = json({ schemaVersion: 2, mediaType: MT.dockerList, manifests: [{ ...arm.descriptor, mediaType: MT.ociManifest }] }, MT.dockerList)

  const cases = [
    { name: 'applİcation/… (U+0130)', type: `appl\u0130cation/vnd.oci.image.index.v1+json`, body: oci, stored: MT.ociIndex },
    { name: 'docKer (U+212A Kelvin sign)', type: `application/vnd.doc\u212aer.distribution.manifest.list.v2+json`, body: docker, stored: MT.dockerList },
    { name: 'trailing U+00A0', type: `${MT.ociIndex}\u00a0`, body: oci, stored: MT.ociIndex },
    { name: 'trailing U+3000', type: `${MT.ociIndex}\u3000`, body: oci, stored: MT.ociIndex },
    { name: 'leading U+0085', type: `\u0085${MT.ociIndex}`, body: oci, stored: MT.ociIndex },
  ]
  for (const [i, c] of cases.entries()) {
    const direct = await rawRequest(registry.url, 'PUT', `/v2/team/app/manifests/direct${i}`, { 'content-type': wire(c.type) }, c.body.bytes)
    t.equal(direct.status, 201, `${c.name}: straight to the registry the list is stored`)
    const held = await getManifest(registry.url, 'team/app', `direct${i}`)
    t.match(held, { status: 200, contentType: c.stored }, `${c.name}: the registry holds it as a ${c.stored}, naming the child whose layer is gone`)

    const proxied = await rawRequest(proxy.url, 'PUT', `/v2/team/app/manifests/proxied${i}`, { 'content-type': wire(c.type) }, c.body.bytes)
    t.equal(proxied.status, 400, `${c.name}: refused through the proxy`)
    const [error] = errorBody(proxied.body)
    t.equal(error?.code, 'MANIFEST_INVALID', `${c.name}: as an invalid manifest`)
    t.match(error?.message, /Content-Type .* outside printable ASCII; the registry would read it as "application\/vnd\./, `${c.name}: saying why`)
    t.equal((await getManifest(registry.url, 'team/app', `proxied${i}`)).status, 404, `${c.name}: nothing stored`)
  }

  // ASCII spellings the registry reads as a list type are checked like the plain one.
  for (const [i, type] of [`APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON;`, `\t${MT.ociIndex} ;charset="utf-8"`, `${MT.ociIndex}; A=1; b="x;y"`].entries()) {
    const direct = await rawRequest(registry.url, 'PUT', `/v2/team/app/manifests/ascii-direct${i}`, { 'content-type': type }, oci.bytes)
    t.equal(direct.status, 201, `${JSON.stringify(type)}: stored straight`)
    const proxied = await rawRequest(proxy.url, 'PUT', `/v2/team/app/manifests/ascii${i}`, { 'content-type': type }, oci.bytes)
    t.equal(proxied.status, 400, `${JSON.stringify(type)}: checked and refused through the proxy`)
    t.match(errorBody(proxied.body)[0], { code: 'MANIFEST_BLOB_UNKNOWN', message: new RegExp(arm.layers[1]!.digest) }, 'naming the missing layer')
    t.equal((await getManifest(registry.url, 'team/app', `ascii${i}`)).status, 404, 'nothing stored')
  }

  // A header Go cannot parse: the registry refuses the PUT itself, and so the proxy passes it on.
  const bad = `${MT.ociIndex}; charset`
  const answers = []
  for (const base of [registry.url, proxy.url]) {
    const res = await rawRequest(base, 'PUT', `/v2/team/app/manifests/unparsed`, { 'content-type': bad }, buildIndex([buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'absent' })]).manifest.bytes)
    answers.push({ status: res.status, code: errorBody(res.body)[0]?.code })
  }
  t.equal(answers[0]?.status, 400, 'the registry refuses a Content-Type Go cannot parse')
  t.equal(answers[1]?.status, 400, 'and so does the proxy (the body names a child that is not there)')
  t.equal((await getManifest(registry.url, 'team/app', 'unparsed')).status, 404, 'nothing stored')
})

t.test('an index entry whose media type is not a manifest type', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'entry-types', layerCount: 2 })
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'entry-types' })
  await pushImage(registry.url, 'team/app', arm)
  await pushImage(registry.url, 'team/app', amd)
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${arm.layers[1]!.digest}`, { method: 'DELETE' })).status, 202, 'a layer of the arm64 child deleted')

  for (const [i, mediaType] of [`${MT.ociManifest.replace('json', 'JSON')}`, MT.ociLayer, 'x', MT.ociNondistributable].entries()) {
    const list = buildIndex([amd], { extraEntries: [{ ...arm.descriptor, mediaType }] }).manifest
    t.equal((await putManifest(registry.url, 'team/app', `direct${i}`, list)).status, 201, `${mediaType}: straight to the registry the list is stored`)
    t.equal((await getManifest(registry.url, 'team/app', `direct${i}`)).status, 200, `${mediaType}: and held`)
    const res = await putManifest(proxy.url, 'team/app', `proxied${i}`, list)
    t.equal(res.status, 400, `${mediaType}: refused through the proxy`)
    const errors = await errorsOf(res)
    t.ok(
      errors.some((e) => e.code === 'MANIFEST_BLOB_UNKNOWN' && e.message.includes(arm.layers[1]!.digest)),
      `${mediaType}: the child was walked as the image it is, and its missing layer named (${errors.map((e) => e.code).join(', ')})`,
    )
    t.equal((await getManifest(registry.url, 'team/app', `proxied${i}`)).status, 404, `${mediaType}: nothing stored`)
  }

  // Blobs listed as entries (a BuildKit registry cache) are blobs: they still pass, both ways.
  const cacheConfig = blob(Buffer.from('{"layers":[],"records":[]}'), 'application/vnd.buildkit.cacheconfig.v0')
  await pushBlob(registry.url, 'team/cache', cacheConfig)
  await pushBlob(registry.url, 'team/cache', amd.layers[0]!)
  const cache = json(
    {
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        { mediaType: MT.ociLayer, digest: amd.layers[0]!.digest, size: amd.layers[0]!.bytes.length, annotations: { 'buildkit/createdat': '2026-01-01T00:00:00Z' } },
        { mediaType: cacheConfig.mediaType, digest: cacheConfig.digest, size: cacheConfig.bytes.length },
      ],
    },
    MT.ociIndex,
  )
  t.equal((await putManifest(registry.url, 'team/cache', 'direct', cache)).status, 201, 'a BuildKit cache index is stored straight')
  const res = await putManifest(proxy.url, 'team/cache', 'proxied', cache)
  t.equal(res.status, 201, `and through the proxy (${res.status === 201 ? '' : await res.text()})`)
  t.equal((await getManifest(registry.url, 'team/cache', 'proxied')).digest, cache.digest, 'the registry holds the same bytes')
})

t.test('a cached child is read from its bytes, not from how it was pushed', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'cache-bytes', layerCount: 2 })
  for (const b of [arm.config, ...arm.layers]) await pushBlob(proxy.url, 'team/app', b)
  // A child image manifest without a mediaType field: the Content-Type alone says what it is.
  const doc = { schemaVersion: 2, config: { mediaType: MT.ociConfig, digest: arm.config.digest, size: arm.config.bytes.length }, layers: arm.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })) }
  const child = blob(Buffer.from(JSON.stringify(doc)), MT.ociManifest)
  const folded = wire(`appl\u0130cation/vnd.oci.image.manifest.v1+json`)

  const viaProxy = await rawRequest(proxy.url, 'PUT', `/v2/team/app/manifests/${child.digest}`, { 'content-type': folded }, child.bytes)
  t.equal(viaProxy.status, 400, 'through the proxy the folded Content-Type is refused')
  t.equal((await getManifest(registry.url, 'team/app', child.digest)).status, 404, 'and the registry holds nothing')
  const straight = await rawRequest(registry.url, 'PUT', `/v2/team/app/manifests/${child.digest}`, { 'content-type': folded }, child.bytes)
  t.equal(straight.status, 201, 'straight to the registry it is stored')
  t.match(await getManifest(registry.url, 'team/app', child.digest), { status: 200, contentType: MT.ociManifest }, 'as an OCI image manifest')
  // The same bytes pushed through the proxy as clients send them: the proxy keeps them.
  t.equal((await putManifest(proxy.url, 'team/app', child.digest, child)).status, 201, 'pushed again through the proxy with a plain Content-Type')

  const entry = { mediaType: MT.ociManifest, digest: child.digest, size: child.bytes.length, platform: { os: 'linux', architecture: 'arm64' } }
  const before = json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [entry], annotations: { n: 'before' } }, MT.ociIndex)
  t.equal((await putManifest(proxy.url, 'team/app', 'before', before)).status, 201, 'a list naming it passes while its layers are there')
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${arm.layers[1]!.digest}`, { method: 'DELETE' })).status, 202, 'then a layer is deleted straight at the registry')

  const after = json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [entry], annotations: { n: 'after' } }, MT.ociIndex)
  t.equal((await putManifest(registry.url, 'team/app', 'after-direct', after)).status, 201, 'straight to the registry the list is stored')
  const res = await putManifest(proxy.url, 'team/app', 'after', after)
  t.equal(res.status, 400, 'through the proxy it is refused')
  t.match((await errorsOf(res))[0], { code: 'MANIFEST_BLOB_UNKNOWN', message: new RegExp(`layer ${arm.layers[1]!.digest}`) }, 'naming the deleted layer')
  t.equal((await getManifest(registry.url, 'team/app', 'after')).status, 404, 'nothing stored')
  const record = proxy.logs.find((r) => r['event'] === 'push.rejected')[0]!
  t.ok(Number(record['cacheHits']) >= 1, 'the child came from the cache, read as the image its bytes are')
})
