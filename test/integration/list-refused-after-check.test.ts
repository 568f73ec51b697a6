import t from 'tap'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { startRecordingRelay } from '../helpers/recording-relay.js'
import { deleteManifest, errorsOf, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The safety net for a race the proxy cannot close: a child is deleted between the proxy's
// lookups (all present, the list is forwarded) and the registry's own check of the list. The
// registry then refuses it with its bare "blob unknown to registry"; the proxy must look
// again and answer why, naming the child, instead of passing that on.

t.test('a list whose child is deleted behind the proxy after it checked is refused with an explanation', async (t) => {
  const registry = await registryFor(t)
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'race' })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'race' })
  const gone = arm.manifest.digest
  let deleted = 0
  // Between the proxy and the registry: the list PUT arrives only after the proxy checked
  // every child, so deleting the arm64 child now is a deletion behind its back.
  const relay = await startRecordingRelay(registry.url, {
    beforeForward: async (r) => {
      if (r.method === 'PUT' && r.url === '/v2/team/app/manifests/1.0') deleted = await deleteManifest(registry.url, 'team/app', gone)
    },
  })
  t.teardown(() => relay.close())
  const proxy = await proxyFor(t, relay.url)
  await pushImage(proxy.url, 'team/app', amd, '1.0-amd64')
  await pushImage(proxy.url, 'team/app', arm, '1.0-arm64')

  const res = await putManifest(proxy.url, 'team/app', '1.0', buildIndex([amd, arm]).manifest)
  t.equal(deleted, 202, 'the child was deleted after the proxy checked it')
  t.equal(relay.requests.filter((r) => r.method === 'PUT' && r.url === '/v2/team/app/manifests/1.0').length, 1, 'the proxy had passed the list on')
  t.equal(res.status, 400)
  const errors = await errorsOf(res)
  t.equal(errors.length, 1, 'one problem')
  t.equal(errors[0]?.code, 'MANIFEST_BLOB_UNKNOWN')
  t.match(errors[0]?.message, `child ${gone}`, 'naming the deleted child')
  t.match(errors[0]?.message, 'was pushed to team/app as team/app:1.0-arm64', 'from what the proxy saw pushed')
  t.match(errors[0]?.message, 'has been deleted since')
  t.notMatch(errors[0]?.message, /^blob unknown to registry$/, "not the registry's bare answer")

  const records = proxy.logs.find((r) => r['event'] === 'push.rejected' && r['reference'] === '1.0')
  t.equal(records.length, 1, 'one decision record')
  t.match(records[0], { recheck: true, problems: [{ cause: 'deleted', digest: gone }] }, 'marked as the recheck')
})
