import t from 'tap'
import { buildImage, buildIndex, type Descriptor, MT, sha256 } from '../helpers/oci-builder.js'
import { getManifest, pushBlob, pushChildren, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Lists that are sound must pass untouched, whatever shape they take: nested indexes,
// attestation children, Docker children in an OCI index, foreign layers, a subject that
// does not exist. The registry ends up holding exactly the bytes sent.

t.test('sound lists of every shape are accepted byte-identical', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'valid' })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, seed: 'valid', format: 'docker' })
  const foreign = buildImage({ platform: { os: 'windows', architecture: 'amd64' }, seed: 'valid', foreignLayer: true })
  // A buildx-style attestation: an image manifest listed as unknown/unknown.
  const attestation = buildImage({ platform: { os: 'unknown', architecture: 'unknown' }, seed: 'attest' })
  const attestationEntry: Descriptor = {
    ...attestation.descriptor,
    annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd.manifest.digest },
  }
  for (const image of [amd, arm, foreign, attestation]) await pushImage(registry.url, 'team/app', image)

  const inner = buildIndex([amd, arm], { platform: { os: 'linux', architecture: 'amd64' } })
  await putManifest(registry.url, 'team/app', inner.manifest.digest, inner.manifest)
  const subject = Buffer.from('nothing here')
  const cases: { name: string; manifest: ReturnType<typeof buildIndex>['manifest'] }[] = [
    { name: 'OCI index of OCI and Docker children (mixed media types)', manifest: buildIndex([amd, arm]).manifest },
    { name: 'Docker manifest list', manifest: buildIndex([amd, arm], { format: 'docker' }).manifest },
    { name: 'attestation child (unknown/unknown)', manifest: buildIndex([amd], { extraEntries: [attestationEntry] }).manifest },
    { name: 'foreign, non-distributable layer', manifest: buildIndex([foreign, amd]).manifest },
    { name: 'nested index', manifest: buildIndex([inner]).manifest },
    { name: 'subject that does not exist', manifest: buildIndex([amd], { subject: { mediaType: MT.ociManifest, digest: sha256(subject), size: subject.length } }).manifest },
  ]
  for (const [i, c] of cases.entries()) {
    const res = await putManifest(proxy.url, 'team/app', `v${i}`, c.manifest)
    t.equal(res.status, 201, `${c.name}: accepted (${await res.text()})`)
    const stored = await getManifest(registry.url, 'team/app', `v${i}`)
    t.ok(stored.bytes.equals(c.manifest.bytes), `${c.name}: stored byte-identical`)
  }
  const accepted = proxy.logs.find((r) => r['event'] === 'push.accepted')
  t.equal(accepted.length, cases.length, 'one push.accepted record per list')

  t.test('pushed by digest', async (t) => {
    const list = buildIndex([amd, arm], { format: 'docker' })
    const res = await putManifest(proxy.url, 'team/app', list.manifest.digest, list.manifest)
    t.equal(res.status, 201)
    t.equal(res.headers.get('docker-content-digest'), list.manifest.digest)
  })

  t.test('a list pushed right after its children: one HEAD per child and blob, no GET of a body it saw', async (t) => {
    const x = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'warm', layerCount: 3 })
    const y = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'warm', layerCount: 3 })
    const list = buildIndex([x, y])
    await pushChildren(proxy.url, 'team/warm', list)
    const res = await putManifest(proxy.url, 'team/warm', 'latest', list.manifest)
    t.equal(res.status, 201)
    const record = proxy.logs.find((r) => r['event'] === 'push.accepted' && r['repository'] === 'team/warm')[0]!
    // Existence is asked anew (content gets deleted behind the proxy's back); bodies are not.
    t.equal(record['upstreamRequests'], 2 + 2 * 4, 'a HEAD for each of two children and eight blobs')
    t.equal(record['cacheHits'], 2, 'both child bodies from the cache')
  })

  t.test('a cold proxy checks every child and blob upstream', async (t) => {
    const cold = await proxyFor(t, registry.url)
    const b = buildImage({ platform: { os: 'linux', architecture: 's390x' }, seed: 'cold', layerCount: 2 })
    await pushBlob(registry.url, 'team/cold', b.config)
    for (const l of b.layers) await pushBlob(registry.url, 'team/cold', l)
    await putManifest(registry.url, 'team/cold', b.manifest.digest, b.manifest)
    const res = await putManifest(cold.url, 'team/cold', 'latest', buildIndex([b]).manifest)
    t.equal(res.status, 201)
    const record = cold.logs.find((r) => r['event'] === 'push.accepted')[0]!
    t.equal(record['children'], 1)
    t.equal(record['blobs'], 3)
    t.equal(record['upstreamRequests'], 4, 'one GET for the child, one HEAD per blob')
  })
})
