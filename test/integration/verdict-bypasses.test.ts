import t from 'tap'
import { blob, buildImage, buildIndex, MT } from '../helpers/oci-builder.js'
import { json } from '../helpers/real-world.js'
import { basic, errorsOf, getManifest, pushBlob, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Regression tests for lists that slipped past the guard broken (the promise: the registry
// never stores a list with a missing child or blob when the push went through the proxy), and
// for answers that told an anonymous client about a repository. Each against a real registry,
// each compared with what the registry alone does.

const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'bypass', layerCount: 2 })
const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'bypass', layerCount: 2 })

t.test('keys that Go folds', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  await pushImage(registry.url, 'team/app', amd)
  // A child whose layer is gone: distribution accepts a list naming it (it never looks at blobs).
  await pushImage(registry.url, 'team/app', arm)
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${arm.layers[1]!.digest}`, { method: 'DELETE' })).status, 202)
  const good = JSON.stringify(amd.descriptor)
  const broken = JSON.stringify(arm.descriptor)

  const bodies: { name: string; body: string }[] = [
    { name: 'a second manifests array spelled manife\u017fts (U+017F)', body: `{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[${good}],"manife\u017fts":[${good},${broken}]}` },
    { name: 'MANIFESTS after manifests', body: `{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[${good}],"MANIFESTS":[${broken}]}` },
    {
      name: 'a descriptor with a second digest spelled dige\u017ft',
      body: `{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[${good
        .replace(`"digest":"${amd.manifest.digest}"`, `"digest":"${amd.manifest.digest}","dige\u017ft":"${arm.manifest.digest}"`)
        .replace(`"size":${amd.descriptor.size}`, `"size":${amd.descriptor.size},"\u017fize":${arm.descriptor.size}`)}]}`,
    },
  ]
  for (const [i, c] of bodies.entries()) {
    const list = blob(Buffer.from(c.body), MT.ociIndex)
    const direct = await putManifest(registry.url, 'team/app', `direct${i}`, list)
    t.equal(direct.status, 201, `${c.name}: straight to the registry it is stored, naming the broken child (${await direct.text()})`)
    const res = await putManifest(proxy.url, 'team/app', `fold${i}`, list)
    const errors = await errorsOf(res)
    t.equal(res.status, 400, `${c.name}: refused`)
    t.equal(errors[0]?.code, 'MANIFEST_INVALID', `${c.name}: as an invalid manifest`)
    t.match(errors[0]?.message, /which the registry reads as the same field/, `${c.name}: says why`)
    t.equal((await getManifest(registry.url, 'team/app', `fold${i}`)).status, 404, `${c.name}: nothing stored`)
  }

  // A child, pushed straight to the registry, whose folded "layerſ" names a layer deleted since.
  const hidden = blob(Buffer.from('a layer that will be deleted'), MT.ociLayer)
  await pushBlob(registry.url, 'team/app', hidden)
  const layers = amd.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length }))
  const config = { mediaType: amd.config.mediaType, digest: amd.config.digest, size: amd.config.bytes.length }
  const child = blob(
    Buffer.from(`{"schemaVersion":2,"mediaType":"${MT.ociManifest}","config":${JSON.stringify(config)},"layers":${JSON.stringify(layers)},"layer\u017f":${JSON.stringify([...layers, { mediaType: MT.ociLayer, digest: hidden.digest, size: hidden.bytes.length }])}}`),
    MT.ociManifest,
  )
  t.equal((await putManifest(registry.url, 'team/app', child.digest, child)).status, 201, 'the registry stores the child (it reads the last key)')
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${hidden.digest}`, { method: 'DELETE' })).status, 202, 'its hidden layer deleted')
  const list = json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: child.digest, size: child.bytes.length, platform: { os: 'linux', architecture: 'amd64' } }] }, MT.ociIndex)
  t.equal((await putManifest(registry.url, 'team/app', 'hidden-direct', list)).status, 201, 'straight to the registry the list is stored, broken')
  const res = await putManifest(proxy.url, 'team/app', 'hidden', list)
  t.equal(res.status, 400, 'a child with a folded "layerſ" cannot hide a deleted layer')
  t.match((await errorsOf(res))[0]?.message, /not a manifest manifest-guard can read .*"layers" and "layerſ", which the registry reads as the same field "layers"/)
})

t.test('existence believed from the cache', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  // Children pushed through the proxy: it saw every blob and both manifests.
  await pushImage(proxy.url, 'team/app', amd)
  await pushImage(proxy.url, 'team/app', arm)
  t.equal((await putManifest(proxy.url, 'team/app', 'before', buildIndex([amd, arm]).manifest)).status, 201, 'sound while everything is there')
  // An admin deletes a layer straight at the registry, as GC or retention would.
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${arm.layers[0]!.digest}`, { method: 'DELETE' })).status, 202)
  const res = await putManifest(proxy.url, 'team/app', 'after', buildIndex([amd, arm]).manifest)
  t.equal(res.status, 400, 'the deletion is seen at once')
  t.match((await errorsOf(res))[0]?.message, `layer ${arm.layers[0]!.digest} (layer 1) of the linux/arm64 child`)
  const record = proxy.logs.find((r) => r['event'] === 'push.rejected')[0]!
  t.equal(record['upstreamRequests'], 2 + 3 + 3, 'one HEAD per child and per blob, no GET: the child bodies came from the cache')
})

t.test('layers with urls', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const mirrored = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'bypass-urls', layerUrls: ['https://mirror.example/layer'] })
  await pushImage(registry.url, 'team/app', mirrored)
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${mirrored.layers[0]!.digest}`, { method: 'DELETE' })).status, 202)
  const list = buildIndex([mirrored]).manifest
  t.equal((await putManifest(registry.url, 'team/app', 'direct', list)).status, 201, 'the registry stores it broken')
  const res = await putManifest(proxy.url, 'team/app', 'proxied', list)
  t.equal(res.status, 400, 'an ordinary layer is looked up even when it names urls')
  t.match((await errorsOf(res))[0]?.message, `layer ${mirrored.layers[0]!.digest} (layer 1) of the linux/amd64 child`)
})

t.test('anonymous existence oracle', async (t) => {
  const registry = await registryFor(t, { users: { alice: 'alice-pw' } })
  const proxy = await proxyFor(t, registry.url)
  const alice = basic('alice', 'alice-pw')
  await pushImage(proxy.url, 'team/secret', amd, undefined, alice)
  // A second amd64 build, labelled truthfully: only the body is odd (one platform twice), and
  // every child is in the proxy's cache.
  const amdAgain = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'oracle-second-amd64' })
  await pushImage(proxy.url, 'team/secret', amdAgain, undefined, alice)
  const odd = buildIndex([amd], { extraEntries: [amdAgain.descriptor] }).manifest
  const answers = []
  for (const base of [registry.url, proxy.url]) {
    const res = await fetch(`${base}/v2/team/secret/manifests/odd`, { method: 'PUT', headers: { 'content-type': odd.mediaType }, body: odd.bytes })
    answers.push({ status: res.status, challenge: res.headers.get('www-authenticate'), body: await res.text() })
  }
  t.equal(answers[1]!.status, 401, "an anonymous client gets the registry's challenge, and nothing from the proxy")
  t.same(answers[1], answers[0], 'exactly what the registry alone answers')
  const withAuth = await putManifest(proxy.url, 'team/secret', 'odd', odd, alice)
  t.equal(withAuth.status, 201, 'the same list with credentials is forwarded (two entries for one platform are allowed)')
  const warned = proxy.logs.find((r) => r['event'] === 'push.warned')
  t.equal((warned[0]?.['problems'] as { cause: string }[] | undefined)?.[0]?.cause, 'duplicate-entry', 'and recorded as a warning')
})
