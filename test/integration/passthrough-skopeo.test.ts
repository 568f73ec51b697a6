import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { assertOk, skopeoPull, skopeoPush } from '../helpers/clients.js'
import { contentsOf, ociLayoutRef, sha256, twoPlatformIndex } from '../helpers/oci-builder.js'
import { getManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// skopeo pushes and pulls multi-platform images through the proxy with the same results as
// direct: same digests stored, every byte read back intact.

t.test('skopeo copy --all through the proxy', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)

  for (const format of ['oci', 'v2s2'] as const) {
    const { index } = twoPlatformIndex(`skopeo-${format}`)
    const layout = ociLayoutRef(index)
    assertOk(await skopeoPush(layout, `${proxy.host}/team/app:${format}`, { format }), 'skopeo push via proxy')
    assertOk(await skopeoPush(layout, `${registry.host}/direct/app:${format}`, { format }), 'skopeo push direct')

    const viaProxy = await getManifest(registry.url, 'team/app', format)
    const direct = await getManifest(registry.url, 'direct/app', format)
    t.equal(viaProxy.status, 200, `${format}: list stored`)
    t.equal(viaProxy.digest, direct.digest, `${format}: the list pushed through the proxy is the one pushed direct`)
    t.ok(viaProxy.bytes.equals(direct.bytes), `${format}: byte-identical list`)
    if (format === 'oci') {
      for (const m of contentsOf(index).manifests.slice(0, -1)) {
        const child = await getManifest(registry.url, 'team/app', m.digest)
        t.ok(child.bytes.equals(m.bytes), `oci: child ${m.digest.slice(0, 19)} stored byte-identical`)
      }
    }
    const readBack = await getManifest(proxy.url, 'team/app', format)
    t.ok(readBack.bytes.equals(direct.bytes), `${format}: reads back identical through the proxy`)
    t.equal(readBack.contentType, direct.contentType, `${format}: same Content-Type through the proxy`)

    const out = `${layout.slice(4, layout.lastIndexOf(':'))}-pulled`
    const outDirect = `${out}-direct`
    assertOk(await skopeoPull(`${proxy.host}/team/app:${format}`, `oci:${out}:pulled`), 'skopeo pull via proxy')
    assertOk(await skopeoPull(`${registry.host}/direct/app:${format}`, `oci:${outDirect}:pulled`), 'skopeo pull direct')
    const pulledFiles = readdirSync(join(out, 'blobs', 'sha256')).sort()
    t.same(pulledFiles, readdirSync(join(outDirect, 'blobs', 'sha256')).sort(), `${format}: pulled the same content as direct`)
    for (const file of pulledFiles) {
      t.equal(sha256(readFileSync(join(out, 'blobs', 'sha256', file))), `sha256:${file}`, `${format}: pulled ${file.slice(0, 12)} intact`)
    }
    if (format === 'oci') {
      for (const b of contentsOf(index).blobs) t.ok(pulledFiles.includes(b.digest.slice(7)), `oci: pulled the pushed blob ${b.digest.slice(0, 19)}`)
    }
  }
})
