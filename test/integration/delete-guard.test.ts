import t from 'tap'
import { skopeo } from '../helpers/clients.js'
import { buildImage, buildIndex, type BuiltImage } from '../helpers/oci-builder.js'
import { deleteManifest, errorsOf, getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { freePort, waitFor } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The delete guard, side by side: the same deletes straight to the registry (which breaks the
// tagged list) and through the proxy, then what the registry still holds.

async function deleteBlob(base: string, repo: string, digest: string): Promise<Response> {
  return fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })
}

async function blobStatus(base: string, repo: string, digest: string): Promise<number> {
  const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })
  return res.status
}

/** The proxy's own requests to the registry so far (its lookups, not the clients' traffic). */
async function lookups(adminUrl: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) if (line.startsWith('manifest_guard_upstream_lookups_total{')) sum += Number(line.split(' ').at(-1))
  return sum
}

const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'dg', layerCount: 2 })
const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'dg', layerCount: 2 })
const lonely = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'dg-lonely' })
const list = buildIndex([amd, arm])

t.test('delete guard: straight to the registry and through the proxy', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { validation: { rules: [{ match: 'mirror/**', mode: 'warn' }] } })
  const off = await proxyFor(t, registry.url, { deleteGuard: { enabled: false } })

  const arrange = async (base: string, repo: string): Promise<void> => {
    for (const image of [amd, arm, lonely]) await pushImage(base, repo, image)
    const res = await putManifest(base, repo, '1.0', list.manifest)
    if (res.status !== 201) throw new Error(`list push answered ${res.status}`)
  }

  await t.test('straight: the registry deletes a child of a tagged list (202) and the list breaks', async (t) => {
    await arrange(registry.url, 'direct/app')
    t.equal(await deleteManifest(registry.url, 'direct/app', arm.manifest.digest), 202)
    t.equal((await getManifest(registry.url, 'direct/app', arm.manifest.digest)).status, 404)
    t.equal((await getManifest(registry.url, 'direct/app', '1.0')).status, 200, 'the list is still tagged, naming a child that is gone')
  })

  await arrange(proxy.url, 'team/app')

  await t.test('through the proxy: deleting a child of the tagged list is refused, naming the list', async (t) => {
    const res = await fetch(`${proxy.url}/v2/team/app/manifests/${arm.manifest.digest}`, { method: 'DELETE' })
    t.equal(res.status, 409)
    const [error] = await errorsOf(res)
    t.equal(error!.code, 'DENIED')
    t.match(error!.message, `manifest-guard refused to delete manifest ${arm.manifest.digest}: the tagged list team/app:1.0 (${list.manifest.digest}) names it`)
    t.match(error!.message, 'Fix: delete or re-point the list first')
    t.match(error!.detail, { lists: [{ tag: '1.0', digest: list.manifest.digest }] })
    t.equal((await getManifest(registry.url, 'team/app', arm.manifest.digest)).status, 200, 'the child is still there')
    const record = proxy.logs.find((r) => r['event'] === 'delete.refused')[0]!
    t.match(record, { repository: 'team/app', digest: arm.manifest.digest, object: 'manifest', upstreamRequests: 1 })
  })

  await t.test('skopeo delete of the other child: refused, the message printed', async (t) => {
    const r = await skopeo(['delete', '--tls-verify=false', `docker://${proxy.host}/team/app@${amd.manifest.digest}`])
    t.not(r.code, 0)
    t.match(r.stderr, 'the tagged list team/app:1.0')
    t.equal((await getManifest(registry.url, 'team/app', amd.manifest.digest)).status, 200)
  })

  await t.test("deleting a layer or the config of such a child is refused", async (t) => {
    for (const b of [arm.layers[1]!, arm.config]) {
      const res = await deleteBlob(proxy.url, 'team/app', b.digest)
      t.equal(res.status, 409)
      t.match((await errorsOf(res))[0]!.message, `refused to delete blob ${b.digest}: an image of the tagged list team/app:1.0`)
      t.equal(await blobStatus(registry.url, 'team/app', b.digest), 200, 'the blob is still there')
    }
  })

  await t.test('an image no tagged list names is deleted as straight (202), at no extra cost', async (t) => {
    const before = await lookups(proxy.adminUrl)
    t.equal(await deleteManifest(proxy.url, 'team/app', lonely.manifest.digest), 202)
    t.equal((await deleteBlob(proxy.url, 'team/app', lonely.layers[0]!.digest)).status, 202)
    t.equal(await lookups(proxy.adminUrl), before, 'no lookup made')
    t.equal((await getManifest(registry.url, 'team/app', lonely.manifest.digest)).status, 404)
  })

  await t.test('the list itself can be deleted; then its children can', async (t) => {
    t.equal(await deleteManifest(proxy.url, 'team/app', list.manifest.digest), 202)
    t.equal(await deleteManifest(proxy.url, 'team/app', arm.manifest.digest), 202)
  })

  await t.test('a list re-pointed (its tag pushed again without the child) no longer holds the child', async (t) => {
    await arrange(proxy.url, 'team/moved')
    const next = buildIndex([amd])
    t.equal((await putManifest(proxy.url, 'team/moved', '1.0', next.manifest)).status, 201)
    t.equal(await deleteManifest(proxy.url, 'team/moved', arm.manifest.digest), 202)
    t.match(proxy.logs.find((r) => r['event'] === 'delete.allowed' && r['repository'] === 'team/moved')[0], { upstreamRequests: 1 })
    // amd is still in the re-pointed list.
    t.equal((await fetch(`${proxy.url}/v2/team/moved/manifests/${amd.manifest.digest}`, { method: 'DELETE' })).status, 409)
  })

  await t.test('warn mode: logged, forwarded', async (t) => {
    await arrange(proxy.url, 'mirror/app')
    t.equal(await deleteManifest(proxy.url, 'mirror/app', arm.manifest.digest), 202)
    t.equal(proxy.logs.find((r) => r['event'] === 'delete.warned' && r['repository'] === 'mirror/app').length, 1)
  })

  await t.test('deleteGuard.enabled: false lets it through', async (t) => {
    await arrange(off.url, 'team/off')
    t.equal(await deleteManifest(off.url, 'team/off', arm.manifest.digest), 202)
  })
})

t.test('a list pushed straight to the registry is learned from its notification', async (t) => {
  const adminPort = await freePort()
  const registry = await registryFor(t, { notify: { url: `http://127.0.0.1:${adminPort}/_guard/v1/events`, token: 'dg-token' } })
  const proxy = await proxyFor(t, registry.url, { admin: { listen: `127.0.0.1:${adminPort}` }, registryEvents: { token: 'dg-token' } })
  for (const image of [amd, arm]) await pushImage(registry.url, 'team/straight', image)
  t.equal((await putManifest(registry.url, 'team/straight', '1.0', list.manifest)).status, 201)
  await waitFor(async () => proxy.app.guard.listIndex.has('team/straight', list.manifest.digest as never, '1.0'), 15_000, 'the notified list indexed')
  const res = await deleteBlob(proxy.url, 'team/straight', arm.layers[0]!.digest)
  t.equal(res.status, 409)
  t.match((await errorsOf(res))[0]!.message, 'team/straight:1.0')
})

t.test('cost of a cleanup: 200 untagged images among 30 tagged lists', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const repo = 'team/busy'
  const children: BuiltImage[][] = []
  for (let i = 0; i < 30; i++) {
    const pair = ['amd64', 'arm64'].map((architecture) => buildImage({ platform: { os: 'linux', architecture }, seed: `busy-${i}` }))
    for (const image of pair) await pushImage(proxy.url, repo, image)
    t.equal((await putManifest(proxy.url, repo, `v${i}`, buildIndex(pair).manifest)).status, 201)
    children.push(pair)
  }
  const untagged = Array.from({ length: 200 }, (_, i) => buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: `untagged-${i}` }))
  for (const image of untagged) await pushImage(proxy.url, repo, image)

  const before = await lookups(proxy.adminUrl)
  let deleted = 0
  for (const image of untagged) if ((await deleteManifest(proxy.url, repo, image.manifest.digest)) === 202) deleted++
  t.equal(deleted, 200, 'every untagged image deleted')
  const cleanup = (await lookups(proxy.adminUrl)) - before
  t.equal(cleanup, 0, 'deleting 200 untagged images cost no registry request beyond the deletes')

  // A careless cleanup that also tries every child of the tagged lists: one HEAD each, all refused.
  const mark = await lookups(proxy.adminUrl)
  let refused = 0
  for (const pair of children) for (const image of pair) if ((await deleteManifest(proxy.url, repo, image.manifest.digest)) === 409) refused++
  t.equal(refused, 60)
  const careless = (await lookups(proxy.adminUrl)) - mark
  t.equal(careless, 60, 'one tag lookup per protected child')
  t.comment(`cleanup of 200 untagged images with 30 tagged lists: ${cleanup} extra registry requests; 60 deletes of listed children: ${careless}`)
})
