import t from 'tap'
import { request } from 'undici'
import { assertOk, DockerCli, skopeoPush } from '../helpers/clients.js'
import { buildImage, ociLayoutRef } from '../helpers/oci-builder.js'
import { startProxy } from '../helpers/proxy.js'
import { startRegistry } from '../helpers/registry.js'

// docker copies children from other repositories by mounting their blobs; when a source blob
// is gone the registry opens a plain upload instead and docker aborts with "error mounting".
// Through the proxy docker says why; other clients still get the 202 and upload the blob.

t.test('a refused cross-repository mount', async (t) => {
  const registry = await startRegistry()
  t.teardown(() => registry.stop())
  const proxy = await startProxy(registry.url)
  t.teardown(() => proxy.close())
  const docker = new DockerCli()
  t.teardown(() => docker.cleanup())
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'mount' })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'mount' })
  assertOk(await skopeoPush(ociLayoutRef(amd), `${proxy.host}/team/app-amd64:1.0`), 'push amd64')
  assertOk(await skopeoPush(ociLayoutRef(arm), `${proxy.host}/team/app-arm64:1.0`), 'push arm64')
  assertOk(await docker.run(['manifest', 'create', '--insecure', `${proxy.host}/team/app:1.0`, `${proxy.host}/team/app-amd64:1.0`, `${proxy.host}/team/app-arm64:1.0`]), 'create')
  const gone = amd.layers[0]!.digest
  t.equal((await fetch(`${registry.url}/v2/team/app-amd64/blobs/${gone}`, { method: 'DELETE' })).status, 202, 'source layer deleted')

  const push = await docker.run(['manifest', 'push', '--insecure', `${proxy.host}/team/app:1.0`])
  t.not(push.code, 0)
  t.match(push.stderr, `blob unknown: cannot mount blob ${gone} from team/app-amd64 into team/app: team/app-amd64 does not hold it`)
  t.match(push.stderr, /\[manifest-guard request [0-9a-f]{12}\]/)
  t.equal(proxy.logs.find((r) => r['event'] === 'mount.refused').length, 1, 'the refusal is logged')

  const uploads = await fetch(`${registry.url}/v2/team/app/blobs/uploads/`, { method: 'POST' })
  t.equal(uploads.status, 202, 'the registry still works')

  const skopeoLike = await request(`${proxy.url}/v2/team/other/blobs/uploads/?mount=${gone}&from=team/app-amd64`, { method: 'POST', headers: { 'user-agent': 'skopeo/1.9.3' } })
  await skopeoLike.body.dump()
  t.equal(skopeoLike.statusCode, 202, 'skopeo/buildah/podman get the 202 and upload the blob themselves')
  t.match(String(skopeoLike.headers['location']), `http://${proxy.host}/v2/team/other/blobs/uploads/`)
})
