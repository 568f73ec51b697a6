import t from 'tap'
import { blob, buildImage, MT, sha256 } from '../helpers/oci-builder.js'
import { errorsOf, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Amplification and memory: one list must cost the registry, the proxy's heap and the answer
// no more than its distinct objects warrant, however it is written. Bounded in count and time;
// loopback only.

t.test('amplification and memory', async (t) => {
  const registry = await registryFor(t)
  // 5 000 lookups take longer than the default 20 s budget on a loaded 2-core machine; the
  // counts below are only exact when the walk is not cut off.
  const proxy = await proxyFor(t, registry.url, { validation: { timeoutMs: 300_000 } })
  const present = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'amplify' })
  await pushImage(registry.url, 'team/app', present)

  t.test('a 1 MB list naming one unknown digest 5 000 times', async (t) => {
    const ghost = { mediaType: MT.ociManifest, digest: sha256(Buffer.from('ghost')), size: 1234, platform: { os: 'linux', architecture: 'amd64' }, annotations: { pad: 'x'.repeat(60) } }
    const list = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: Array.from({ length: 5000 }, () => ghost) })), MT.ociIndex)
    t.ok(list.bytes.length > 1_000_000, `${list.bytes.length} bytes`)
    const started = performance.now()
    const res = await putManifest(proxy.url, 'team/app', 'flood', list)
    const elapsed = performance.now() - started
    const text = await res.text()
    t.equal(res.status, 400)
    // The request count and the answer's size are the measure; this bound only catches a hang
    // (about 230 ms here when the machine is idle).
    t.ok(elapsed < 30_000, `answered in ${Math.round(elapsed)} ms (was 11 s)`)
    t.ok(text.length < 16_384, `an answer of ${text.length} bytes (was 7.4 MB)`)
    const errors = (JSON.parse(text) as { errors: { message: string }[] }).errors
    t.equal(errors.length, 1, 'one problem: the one missing child')
    const record = proxy.logs.find((r) => r['event'] === 'push.rejected' && r['reference'] === 'flood')[0]!
    t.ok((record['upstreamRequests'] as number) <= 8, `${String(record['upstreamRequests'])} registry requests (was 15 001)`)
  })

  t.test('5 000 distinct unknown children: the answer names the first 20 and counts the rest', async (t) => {
    const entries = Array.from({ length: 5000 }, (_, i) => ({ mediaType: MT.ociManifest, digest: sha256(Buffer.from(`missing ${i}`)), size: 500, platform: { os: 'linux', architecture: `a${i}` } }))
    const list = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: entries })), MT.ociIndex)
    const res = await putManifest(proxy.url, 'team/app', 'many', list)
    t.equal(res.status, 400)
    const errors = await errorsOf(res)
    t.equal(errors.length, 21, 'twenty problems and a closing entry')
    t.match(errors[20]?.message, /^and 4980 more problems of the same list/)
    const record = proxy.logs.find((r) => r['event'] === 'push.rejected' && r['reference'] === 'many')[0]!
    t.equal((record['problems'] as unknown[]).length, 20, 'the record keeps 20 problems')
    t.equal(record['problemsOmitted'], 4980, 'and counts the rest')
    t.ok(JSON.stringify(record).length < 64 << 10, `a record of ${JSON.stringify(record).length} bytes`)
    // One lookup per distinct child, and the explanations under a budget of their own size.
    const requests = record['upstreamRequests'] as number
    t.ok(requests >= 5000 && requests <= 5000 + 20 * 8, `${requests} registry requests for 5 000 distinct children`)
  })

  t.test('the ring of decisions stays bounded in bytes under a flood of rejected pushes', async (t) => {
    const entries = Array.from({ length: 100 }, (_, i) => ({ mediaType: MT.ociManifest, digest: sha256(Buffer.from(`ring ${i}`)), size: 500, platform: { os: 'linux', architecture: `a${i}` }, annotations: { pad: 'y'.repeat(200) } }))
    const list = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: entries })), MT.ociIndex)
    for (let i = 0; i < 15; i++) {
      const res = await putManifest(proxy.url, 'team/app', `ring${i}`, list)
      await res.arrayBuffer()
      t.equal(res.status, 400, `push ${i} refused`)
    }
    const ring = proxy.app.guard.decisions
    // The ring's own byte bound is unit-tested; here: what a worst-case record weighs.
    const held = ring.list({ limit: 10_000 }).length
    t.ok(ring.bytes / held < 64 << 10, `${held} records in ${ring.bytes} bytes: under 64 KiB a record, so the 16 MiB bound holds at least 256`)
  })
})
