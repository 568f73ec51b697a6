import t from 'tap'
import { request } from 'undici'
import { assertOk, DockerCli, skopeoPush } from '../helpers/clients.js'
import { buildImage, ociLayoutRef } from '../helpers/oci-builder.js'
import { pushImage } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// docker copies children from other repositories by mounting their blobs; when a source blob
// is gone the registry opens a plain upload instead and docker aborts with "error mounting".
// Through the proxy docker says why; other clients still get the 202 and upload the blob.

t.test('a refused cross-repository mount', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
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

t.test('a Windows image whose foreign layer can never be mounted: docker manifest push works as it does straight to the registry', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const docker = new DockerCli()
  t.teardown(() => docker.cleanup())
  const win = buildImage({ platform: { os: 'windows', architecture: 'amd64' }, seed: 'win-mount', format: 'docker', foreignLayer: true })
  const linux = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'win-mount', format: 'docker' })
  // The foreign layer is never uploaded: it lives at its urls, and the registry allows those.
  await pushImage(registry.url, 'team/app-win', win, '1.0')
  await pushImage(registry.url, 'team/app-linux', linux, '1.0')

  for (const [via, host] of [['straight to the registry', registry.host], ['through the proxy', proxy.host]] as const) {
    const list = `${host}/team/app:win-${via === 'through the proxy' ? 'proxy' : 'direct'}`
    assertOk(await docker.run(['manifest', 'create', '--insecure', list, `${host}/team/app-win:1.0`, `${host}/team/app-linux:1.0`]), `create ${via}`)
    const push = await docker.run(['manifest', 'push', '--insecure', list])
    t.equal(push.code, 0, `docker manifest push ${via} succeeds (${push.stderr.trim()})`)
  }
  const foreign = proxy.logs.find((r) => r['event'] === 'mount.refused')
  t.ok(foreign.length >= 1, 'the foreign layer mount was refused by the registry, and passed on as it was')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.rejected').length, 0)
})

t.test("the docker engine's and other clients' refused mounts keep the registry's 202", async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const image = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'engine-mount' })
  await pushImage(registry.url, 'team/src', image, '1.0')
  const gone = image.layers[0]!.digest
  t.equal((await fetch(`${registry.url}/v2/team/src/blobs/${gone}`, { method: 'DELETE' })).status, 202)
  const agents = [
    'docker/20.10.24 go/go1.19.8 git-commit/5d6db84 kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/28.2.2 \\(linux\\))',
    'containerd/1.7.2',
    'skopeo/1.9.3',
    'Go-http-client/1.1',
  ]
  for (const agent of agents) {
    const answers = []
    for (const base of [registry.url, proxy.url]) {
      const res = await request(`${base}/v2/team/dst/blobs/uploads/?mount=${gone}&from=team/src`, { method: 'POST', headers: { 'user-agent': agent } })
      await res.body.dump()
      answers.push(res.statusCode)
    }
    t.same(answers, [202, 202], `${agent.split(' ')[0]}: 202 straight and through the proxy`)
  }
})
