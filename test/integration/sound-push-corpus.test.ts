import t from 'tap'
import { type Blob, blob, buildImage, buildIndex, type BuiltImage, type BuiltIndex, type Descriptor, MT, pseudoRandom, sha256 } from '../helpers/oci-builder.js'
import { artifact, buildkitCache, emptyLayerImage, goNilLayers, json, zstdVariant } from '../helpers/real-world.js'
import { getManifest, pushBlob, pushChildren, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The sound-push corpus: real-world push shapes the registry stores, each pushed with the same
// requests straight to the registry and through the proxy (default settings). The proxy must
// answer the same status and the registry must end up holding the same list. A guard that
// refuses one team's normal push gets removed from the cluster the same day.

interface Pushed {
  readonly list: Pick<Blob, 'bytes' | 'mediaType'>
  readonly ref?: string
  /** The Content-Type to send; null sends none. Defaults to the list's media type. */
  readonly contentType?: string | null
}

interface Case {
  readonly name: string
  /** Pushes whatever the list needs through `base` into `repo`, and says which list to PUT. */
  readonly arrange: (base: string, repo: string) => Promise<Pushed>
}

const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'corpus', layerCount: 2 })
const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, seed: 'corpus' })
const dockerAmd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'corpus', format: 'docker' })
const dockerArm = buildImage({ platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, seed: 'corpus', format: 'docker' })

async function pushAll(base: string, repo: string, images: readonly (BuiltImage | BuiltIndex)[]): Promise<void> {
  await pushChildren(base, repo, { format: 'oci', manifest: blob(Buffer.from('{}'), MT.ociIndex), children: images, descriptor: { mediaType: MT.ociIndex, digest: '', size: 0 } })
}

async function pushBlobs(base: string, repo: string, blobs: readonly Blob[]): Promise<void> {
  for (const b of blobs) await pushBlob(base, repo, b)
}

async function putChild(base: string, repo: string, m: Blob): Promise<void> {
  const res = await putManifest(base, repo, m.digest, m)
  if (res.status !== 201) throw new Error(`child ${m.digest} answered ${res.status}: ${await res.text()}`)
}

/** An upload the way every client sends one: POST, PATCH with the bytes (none for an empty blob), PUT ?digest=. */
async function pushBlobInChunks(base: string, repo: string, b: Blob): Promise<void> {
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  await start.arrayBuffer()
  const patch = await fetch(new URL(start.headers.get('location')!, base), { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: b.bytes })
  await patch.arrayBuffer()
  const location = new URL(patch.headers.get('location')!, base)
  location.searchParams.set('digest', b.digest)
  const put = await fetch(location, { method: 'PUT' })
  if (put.status !== 201) throw new Error(`chunked upload of ${b.digest} answered ${put.status}: ${await put.text()}`)
}

function index(entries: readonly Descriptor[], mediaType: string = MT.ociIndex, extra: Record<string, unknown> = {}): Blob {
  return json({ schemaVersion: 2, mediaType, manifests: entries, ...extra }, mediaType)
}

/** An image whose config says exactly `config` (aliases, no variant, os.version), as real producers write it. */
function configured(seed: string, config: Record<string, unknown>, format: 'oci' | 'docker' = 'oci'): BuiltImage {
  const base = buildImage({ platform: { os: String(config['os']), architecture: String(config['architecture']) }, seed, format })
  const cfg = blob(Buffer.from(JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: [] } })), base.config.mediaType)
  const manifest = json(
    { schemaVersion: 2, mediaType: base.manifest.mediaType, config: { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.bytes.length }, layers: base.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })) },
    base.manifest.mediaType,
  )
  return { ...base, config: cfg, manifest, descriptor: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length } }
}

/** The image's entry under the platform a list gives it. */
function labelled(image: BuiltImage, platform: Record<string, unknown>, extra: Partial<Descriptor> = {}): Descriptor {
  return { ...image.descriptor, platform: platform as never, ...extra }
}

const cases: Case[] = [
  {
    name: 'OCI index of OCI children',
    arrange: async (base, repo) => (await pushAll(base, repo, [amd, arm]), { list: buildIndex([amd, arm]).manifest }),
  },
  {
    name: 'Docker manifest list of Docker children',
    arrange: async (base, repo) => (await pushAll(base, repo, [dockerAmd, dockerArm]), { list: buildIndex([dockerAmd, dockerArm], { format: 'docker' }).manifest }),
  },
  {
    name: 'OCI index naming Docker children (what skopeo, buildah and podman PUT first)',
    arrange: async (base, repo) => (await pushAll(base, repo, [dockerAmd, dockerArm]), { list: buildIndex([dockerAmd, dockerArm]).manifest }),
  },
  {
    name: 'buildx attestation manifests (unknown/unknown)',
    arrange: async (base, repo) => {
      const attestation = buildImage({ platform: { os: 'unknown', architecture: 'unknown' }, seed: 'corpus-attest' })
      await pushAll(base, repo, [amd, attestation])
      const entry = { ...attestation.descriptor, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd.manifest.digest } }
      return { list: buildIndex([amd], { extraEntries: [entry] }).manifest }
    },
  },
  {
    name: 'Windows child with a foreign layer (docker)',
    arrange: async (base, repo) => {
      const win = buildImage({ platform: { os: 'windows', architecture: 'amd64' }, seed: 'corpus-win', format: 'docker', foreignLayer: true })
      await pushAll(base, repo, [win, dockerAmd])
      return { list: buildIndex([win, dockerAmd], { format: 'docker' }).manifest }
    },
  },
  {
    name: 'OCI non-distributable layer',
    arrange: async (base, repo) => {
      const nd = buildImage({ platform: { os: 'windows', architecture: 'amd64' }, seed: 'corpus-nd', foreignLayer: true })
      await pushAll(base, repo, [nd])
      return { list: buildIndex([nd]).manifest }
    },
  },
  {
    name: 'ordinary layers that also name mirror urls',
    arrange: async (base, repo) => {
      const mirrored = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'corpus-urls', layerUrls: ['https://mirror.example/blob'] })
      await pushAll(base, repo, [mirrored])
      return { list: buildIndex([mirrored]).manifest }
    },
  },
  {
    name: 'nested index with a platform on its entry',
    arrange: async (base, repo) => {
      const inner = buildIndex([amd, arm], { platform: { os: 'linux', architecture: 'amd64' } })
      await pushAll(base, repo, [inner])
      return { list: buildIndex([inner]).manifest }
    },
  },
  {
    name: 'a subject that does not exist (referrers)',
    arrange: async (base, repo) => {
      await pushAll(base, repo, [amd])
      return { list: buildIndex([amd], { subject: { mediaType: MT.ociManifest, digest: sha256(Buffer.from('nothing')), size: 7 } }).manifest }
    },
  },
  {
    name: 'an artifact with a subject, listed in an index',
    arrange: async (base, repo) => {
      await pushAll(base, repo, [amd])
      const sbom = artifact('corpus-sbom', MT.ociEmpty, 'application/spdx+json', { mediaType: amd.manifest.mediaType, digest: amd.manifest.digest, size: amd.manifest.bytes.length })
      await pushBlobs(base, repo, sbom.blobs)
      await putChild(base, repo, sbom.manifest)
      return { list: index([{ mediaType: MT.ociManifest, digest: sbom.manifest.digest, size: sbom.manifest.bytes.length, artifactType: 'application/vnd.example.sbom+json' } as Descriptor]) }
    },
  },
  {
    name: 'Helm charts as OCI artifacts, in an index',
    arrange: async (base, repo) => {
      const chart = artifact('corpus-chart', 'application/vnd.cncf.helm.config.v1+json', 'application/vnd.cncf.helm.chart.content.v1.tar+gzip')
      await pushBlobs(base, repo, chart.blobs)
      await putChild(base, repo, chart.manifest)
      return { list: index([{ mediaType: MT.ociManifest, digest: chart.manifest.digest, size: chart.manifest.bytes.length }]) }
    },
  },
  { name: 'empty index', arrange: async () => ({ list: index([]) }) },
  { name: 'manifests: null (a Go nil slice)', arrange: async () => ({ list: json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: null }, MT.ociIndex) }) },
  { name: 'no manifests key at all', arrange: async () => ({ list: json({ schemaVersion: 2, mediaType: MT.ociIndex }, MT.ociIndex) }) },
  {
    name: '120 children',
    arrange: async (base, repo) => {
      const many = Array.from({ length: 120 }, (_, i) => buildImage({ platform: { os: 'linux', architecture: `arch${i}` }, seed: 'corpus-many' }))
      await pushAll(base, repo, many)
      return { list: buildIndex(many).manifest }
    },
  },
  {
    name: '50 children sharing 99 layers (199 distinct objects, 5 050 references)',
    arrange: async (base, repo) => {
      const layers = Array.from({ length: 99 }, (_, i) => blob(pseudoRandom(`corpus-shared/${i}`, 64), MT.ociLayer))
      await pushBlobs(base, repo, layers)
      const entries: Descriptor[] = []
      for (let i = 0; i < 50; i++) {
        const config = json({ architecture: `arch${i}`, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }, MT.ociConfig)
        await pushBlob(base, repo, config)
        const m = json({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length }, layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })) }, MT.ociManifest)
        await putChild(base, repo, m)
        entries.push({ mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, platform: { os: 'linux', architecture: `arch${i}` } })
      }
      return { list: index(entries) }
    },
  },
  {
    name: 'BuildKit registry cache (OCI index of layer blobs and a cache config)',
    arrange: async (base, repo) => {
      const cache = buildkitCache('corpus-bk-oci', 'oci')
      await pushBlobs(base, repo, cache.blobs)
      return { list: cache.list, ref: 'buildcache' }
    },
  },
  {
    name: 'BuildKit registry cache with the Docker list media type',
    arrange: async (base, repo) => {
      const cache = buildkitCache('corpus-bk-docker', 'docker')
      await pushBlobs(base, repo, cache.blobs)
      return { list: cache.list, ref: 'buildcache' }
    },
  },
  {
    name: 'gzip and zstd variants of each platform (podman --add-compression zstd)',
    arrange: async (base, repo) => {
      const amdZstd = zstdVariant(amd)
      const armZstd = zstdVariant(arm)
      await pushAll(base, repo, [amd, arm])
      await pushBlobs(base, repo, [...amdZstd.layers, ...armZstd.layers])
      await putChild(base, repo, amdZstd.image.manifest)
      await putChild(base, repo, armZstd.image.manifest)
      return { list: index([amd.descriptor, amdZstd.image.descriptor, arm.descriptor, armZstd.image.descriptor]) }
    },
  },
  {
    name: 'one platform per os.version, os.features, features and variant',
    arrange: async (base, repo) => {
      const builds = ['10.0.17763.5458', '10.0.20348.2227'].map((v) => buildImage({ platform: { os: 'windows', architecture: 'amd64' }, seed: `corpus-${v}`, format: 'docker' }))
      const v2 = buildImage({ platform: { os: 'linux', architecture: 'amd64', variant: 'v2' }, seed: 'corpus-v2' })
      const v3 = buildImage({ platform: { os: 'linux', architecture: 'amd64', variant: 'v3' }, seed: 'corpus-v3' })
      await pushAll(base, repo, [...builds, v2, v3])
      return {
        list: index(
          [
            { ...builds[0]!.descriptor, platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.5458' } as never },
            { ...builds[1]!.descriptor, platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2227' } as never },
            { ...builds[1]!.descriptor, platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2227', 'os.features': ['win32k'] } as never },
            { ...v2.descriptor, platform: { os: 'linux', architecture: 'amd64', variant: 'v2' } },
            { ...v3.descriptor, platform: { os: 'linux', architecture: 'amd64', variant: 'v3', features: ['avx2'] } as never },
          ],
          MT.dockerList,
        ),
      }
    },
  },
  {
    name: 'multi-variant arm: arm64/v8 entry on an arm64 config, arm/v6 and arm/v7 on configs with and without a variant',
    arrange: async (base, repo) => {
      const arm64 = configured('corpus-pt-arm64', { os: 'linux', architecture: 'arm64' })
      const armv7 = configured('corpus-pt-armv7', { os: 'linux', architecture: 'arm', variant: 'v7' })
      const armv6 = configured('corpus-pt-armv6', { os: 'linux', architecture: 'arm' })
      const armhf = configured('corpus-pt-armhf', { os: 'linux', architecture: 'armhf' }, 'docker')
      await pushAll(base, repo, [arm64, armv7, armv6, armhf])
      return {
        list: index([
          labelled(arm64, { os: 'linux', architecture: 'arm64', variant: 'v8' }),
          labelled(armv7, { os: 'linux', architecture: 'arm', variant: 'v7' }),
          labelled(armv6, { os: 'linux', architecture: 'arm', variant: 'v6' }),
          labelled(armhf, { os: 'linux', architecture: 'arm', variant: 'v7' }, { annotations: { 'org.example.build': 'armhf' } }),
        ]),
      }
    },
  },
  {
    name: 'configs written with aliases (x86_64, aarch64, i386, amd64 v1) and the rarer architectures',
    arrange: async (base, repo) => {
      const images = [
        [configured('corpus-pt-x86', { os: 'linux', architecture: 'x86_64' }), { os: 'linux', architecture: 'amd64' }],
        [configured('corpus-pt-aarch64', { os: 'linux', architecture: 'aarch64' }), { os: 'linux', architecture: 'arm64' }],
        [configured('corpus-pt-i386', { os: 'linux', architecture: 'i386' }), { os: 'linux', architecture: '386' }],
        [configured('corpus-pt-v1', { os: 'linux', architecture: 'amd64', variant: 'v1' }), { os: 'linux', architecture: 'amd64', variant: 'v1' }],
        ...['riscv64', 'ppc64le', 's390x', 'mips64le'].map((a) => [configured(`corpus-pt-${a}`, { os: 'linux', architecture: a }), { os: 'linux', architecture: a }] as const),
      ] as const
      await pushAll(base, repo, images.map(([image]) => image))
      return { list: index(images.map(([image, platform]) => labelled(image, platform))) }
    },
  },
  {
    name: 'Windows versions: the config revision drifts from the entry, os.features on the entry',
    arrange: async (base, repo) => {
      const ltsc2019 = configured('corpus-pt-17763', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' }, 'docker')
      const ltsc2022 = configured('corpus-pt-20348', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1906' }, 'docker')
      await pushAll(base, repo, [ltsc2019, ltsc2022])
      return {
        list: index(
          [
            labelled(ltsc2019, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.3770' }),
            labelled(ltsc2022, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2227', 'os.features': ['win32k'] }),
          ],
          MT.dockerList,
        ),
      }
    },
  },
  {
    name: 'attestations in both forms (an unknown config, an empty config with artifactType), one labelled with a real platform',
    arrange: async (base, repo) => {
      const legacy = configured('corpus-pt-att', { os: 'unknown', architecture: 'unknown' })
      const modern = artifact('corpus-pt-att2', MT.ociEmpty, 'application/vnd.in-toto+json')
      await pushAll(base, repo, [amd, legacy])
      await pushBlobs(base, repo, modern.blobs)
      await putChild(base, repo, modern.manifest)
      const ref = { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd.manifest.digest }
      const modernEntry = { mediaType: MT.ociManifest, digest: modern.manifest.digest, size: modern.manifest.bytes.length }
      return {
        list: index([
          amd.descriptor,
          labelled(legacy, { os: 'unknown', architecture: 'unknown' }, { annotations: ref }),
          labelled(legacy, { os: 'linux', architecture: 'arm64' }, { annotations: { ...ref, 'org.example.copied': 'yes' } }),
          { ...modernEntry, platform: { os: 'unknown', architecture: 'unknown' }, artifactType: 'application/vnd.example.sbom+json', annotations: ref } as Descriptor,
        ]),
      }
    },
  },
  {
    name: 'artifacts listed with a platform (a signature with artifactType, a Helm chart without)',
    arrange: async (base, repo) => {
      const sig = artifact('corpus-pt-sig', MT.ociEmpty, 'application/vnd.dev.cosign.simplesigning.v1+json')
      const chart = artifact('corpus-pt-chart', 'application/vnd.cncf.helm.config.v1+json', 'application/vnd.cncf.helm.chart.content.v1.tar+gzip')
      for (const a of [sig, chart]) {
        await pushBlobs(base, repo, a.blobs)
        await putChild(base, repo, a.manifest)
      }
      return {
        list: index([
          { mediaType: MT.ociManifest, digest: sig.manifest.digest, size: sig.manifest.bytes.length, platform: { os: 'linux', architecture: 'arm64' }, artifactType: 'application/vnd.example.sbom+json' } as Descriptor,
          { mediaType: MT.ociManifest, digest: chart.manifest.digest, size: chart.manifest.bytes.length, platform: { os: 'linux', architecture: 'amd64' } },
        ]),
      }
    },
  },
  {
    name: 'the same entry twice (the image-index spec allows it)',
    arrange: async (base, repo) => (await pushAll(base, repo, [amd]), { list: index([amd.descriptor, amd.descriptor]) }),
  },
  {
    name: 'a child with "layers": null (a Go nil slice)',
    arrange: async (base, repo) => {
      const child = goNilLayers('corpus-nil', 'null')
      await pushBlob(base, repo, child.config)
      await putChild(base, repo, child.manifest)
      return { list: index([{ mediaType: MT.ociManifest, digest: child.manifest.digest, size: child.manifest.bytes.length, platform: { os: 'linux', architecture: 'amd64' } }]) }
    },
  },
  {
    name: 'a child with no layers key at all',
    arrange: async (base, repo) => {
      const child = goNilLayers('corpus-omitted', 'omitted')
      await pushBlob(base, repo, child.config)
      await putChild(base, repo, child.manifest)
      return { list: index([{ mediaType: MT.ociManifest, digest: child.manifest.digest, size: child.manifest.bytes.length, platform: { os: 'linux', architecture: 'amd64' } }]) }
    },
  },
  {
    name: 'a child with fields no spec names (ignored by Go readers)',
    arrange: async (base, repo) => {
      const m = json({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: amd.config.mediaType, digest: amd.config.digest, size: amd.config.bytes.length, 'x-extra': { a: [1] } }, layers: [], builder: { name: 'custom', Layers: 3 } }, MT.ociManifest)
      await pushBlob(base, repo, amd.config)
      await putChild(base, repo, m)
      return { list: index([{ mediaType: MT.ociManifest, digest: m.digest, size: m.bytes.length }], MT.ociIndex, { 'x-generator': 'custom' }) }
    },
  },
  {
    name: 'an empty layer, uploaded POST + empty PATCH + PUT ?digest=',
    arrange: async (base, repo) => {
      const { empty, image } = emptyLayerImage('corpus-empty')
      await pushBlobs(base, repo, [image.config, ...image.layers.filter((l) => l !== empty)])
      await pushBlobInChunks(base, repo, empty)
      await putChild(base, repo, image.manifest)
      return { list: buildIndex([image]).manifest }
    },
  },
  {
    name: 'an entry without a media type',
    arrange: async (base, repo) => {
      await pushAll(base, repo, [amd])
      return { list: index([{ digest: amd.manifest.digest, size: amd.manifest.bytes.length, platform: { os: 'linux', architecture: 'amd64' } } as Descriptor]) }
    },
  },
  {
    name: 'descriptors with annotations, artifactType and data',
    arrange: async (base, repo) => {
      await pushAll(base, repo, [amd])
      const entry = { ...amd.descriptor, annotations: { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z' }, artifactType: 'application/vnd.example', data: amd.manifest.bytes.toString('base64') }
      return { list: index([entry as Descriptor], MT.ociIndex, { annotations: { 'org.opencontainers.image.ref.name': '1.0' } }) }
    },
  },
  {
    name: 'the body says MediaType (Go reads it as mediaType)',
    arrange: async (base, repo) => {
      await pushAll(base, repo, [dockerAmd])
      return { list: json({ schemaVersion: 2, MediaType: MT.dockerList, Manifests: [dockerAmd.descriptor] }, MT.dockerList) }
    },
  },
  {
    name: 'a Docker list that also carries layers (distribution takes it)',
    arrange: async (base, repo) => (await pushAll(base, repo, [dockerAmd]), { list: index([dockerAmd.descriptor], MT.dockerList, { layers: [] }) }),
  },
  {
    name: 'an OCI index with "layers": null',
    arrange: async (base, repo) => (await pushAll(base, repo, [amd]), { list: index([amd.descriptor], MT.ociIndex, { layers: null, config: null }) }),
  },
  {
    name: 'Content-Type with parameters and in capitals',
    arrange: async (base, repo) => (await pushAll(base, repo, [amd]), { list: buildIndex([amd]).manifest, contentType: 'Application/VND.OCI.Image.Index.v1+json; charset=utf-8' }),
  },
  {
    name: 'pushed by digest',
    arrange: async (base, repo) => {
      await pushAll(base, repo, [amd, arm])
      const list = buildIndex([amd, arm], { format: 'docker' }).manifest
      return { list, ref: list.digest }
    },
  },
  {
    name: 'pushed again onto its own tag, and copied to another tag',
    arrange: async (base, repo) => {
      await pushAll(base, repo, [amd, arm])
      const list = buildIndex([amd, arm]).manifest
      const first = await putManifest(base, repo, '1.0', list)
      if (first.status !== 201) throw new Error(`first push answered ${first.status}`)
      const again = await putManifest(base, repo, '1.0', list)
      if (again.status !== 201) throw new Error(`second push answered ${again.status}: ${await again.text()}`)
      return { list, ref: 'stable' }
    },
  },
]

t.test('sound pushes: the same answer straight to the registry and through the proxy', async (t) => {
  t.ok(cases.length >= 25, `${cases.length} shapes`)
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  for (const [i, c] of cases.entries()) {
    await t.test(c.name, async (t) => {
      const outcomes: { status: number; text: string; stored: string | null }[] = []
      for (const [base, repo] of [[registry.url, `direct/c${i}`], [proxy.url, `proxied/c${i}`]] as const) {
        const pushed = await c.arrange(base, repo)
        const ref = pushed.ref ?? 'latest'
        const res = await putManifest(base, repo, ref, pushed.list, undefined, pushed.contentType)
        const stored = await getManifest(registry.url, repo, ref)
        outcomes.push({ status: res.status, text: await res.text(), stored: stored.status === 200 ? stored.digest : null })
        if (stored.status === 200) t.ok(stored.bytes.equals(pushed.list.bytes), `${base === proxy.url ? 'proxy' : 'direct'}: stored byte-identical`)
      }
      const [direct, proxied] = outcomes
      t.equal(direct!.status, 201, `the registry stores it (${direct!.text})`)
      t.equal(proxied!.status, direct!.status, `same status through the proxy (${proxied!.text})`)
      t.equal(proxied!.stored, direct!.stored, 'same stored digest')
    })
  }
  t.equal(proxy.logs.find((r) => r['event'] === 'push.rejected').length, 0, 'nothing rejected')
})
