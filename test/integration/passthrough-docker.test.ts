import t from 'tap'
import { assertOk, type Creds, DockerCli, skopeoPush } from '../helpers/clients.js'
import { ociLayoutRef, twoPlatformIndex } from '../helpers/oci-builder.js'
import { basic, getManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The docker CLI's daemon-free manifest commands through the proxy: create a list from
// platform images pushed before, push it, inspect it; with and without htpasswd auth.

const creds: Creds = { user: 'dev', password: 's3cret-pw' }

for (const auth of [false, true]) {
  t.test(`docker manifest create/push/inspect ${auth ? 'with' : 'without'} auth`, async (t) => {
    const registry = await registryFor(t, auth ? { users: { [creds.user]: creds.password } } : {})
    const proxy = await proxyFor(t, registry.url)
    const docker = new DockerCli()
    t.teardown(() => docker.cleanup())
    if (auth) docker.login(proxy.host, creds)

    const { amd64, arm64 } = twoPlatformIndex(`docker-${auth}`)
    const repo = `${proxy.host}/team/app`
    assertOk(await skopeoPush(ociLayoutRef(amd64), `${repo}:1.0-amd64`, auth ? { creds } : {}), 'push amd64')
    assertOk(await skopeoPush(ociLayoutRef(arm64), `${repo}:1.0-arm64`, auth ? { creds } : {}), 'push arm64')

    assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), 'docker manifest create')
    const pushed = assertOk(await docker.run(['manifest', 'push', '--insecure', `${repo}:1.0`]), 'docker manifest push')
    const digest = pushed.stdout.trim()
    t.match(digest, /^sha256:[a-f0-9]{64}$/, 'docker printed the list digest')

    const stored = await getManifest(registry.url, 'team/app', '1.0', auth ? basic(creds.user, creds.password) : undefined)
    t.equal(stored.status, 200)
    t.equal(stored.digest, digest, 'the registry holds the list docker pushed')
    const inspected = assertOk(await docker.run(['manifest', 'inspect', '--insecure', `${repo}:1.0`]), 'docker manifest inspect')
    const list = JSON.parse(inspected.stdout) as { manifests: { digest: string; platform: { architecture: string } }[] }
    t.same(
      list.manifests.map((m) => [m.platform.architecture, m.digest]),
      [
        ['amd64', amd64.manifest.digest],
        ['arm64', arm64.manifest.digest],
      ],
      'inspect through the proxy shows both platforms',
    )
  })
}
