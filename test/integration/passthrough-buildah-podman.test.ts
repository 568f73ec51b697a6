import t from 'tap'
import { assertOk, type Creds, ContainersTool } from '../helpers/clients.js'
import { ociLayoutRef, twoPlatformIndex } from '../helpers/oci-builder.js'
import { basic, getManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// buildah and podman: `manifest push --all` of a two-platform list through the proxy, with
// and without htpasswd auth, then pull a platform back through it.

const creds: Creds = { user: 'builder', password: 'pa55-word' }

for (const tool of ['buildah', 'podman'] as const) {
  for (const auth of [false, true]) {
    t.test(`${tool} manifest push --all ${auth ? 'with' : 'without'} auth`, async (t) => {
      const registry = await registryFor(t, auth ? { users: { [creds.user]: creds.password } } : {})
      const proxy = await proxyFor(t, registry.url)
      const cli = new ContainersTool(tool)
      t.teardown(() => cli.cleanup())
      const credArgs = auth ? ['--creds', `${creds.user}:${creds.password}`] : []
      const authHeader = auth ? basic(creds.user, creds.password) : undefined

      const { amd64, arm64 } = twoPlatformIndex(`${tool}-${auth}`)
      assertOk(await cli.run(['manifest', 'create', 'localhost/list:1']), 'manifest create')
      for (const image of [amd64, arm64]) assertOk(await cli.run(['manifest', 'add', 'localhost/list:1', ociLayoutRef(image)]), 'manifest add')
      const target = `docker://${proxy.host}/team/${tool}:1.0`
      assertOk(await cli.run(['manifest', 'push', '--all', '--tls-verify=false', ...credArgs, 'localhost/list:1', target]), 'manifest push --all')

      for (const image of [amd64, arm64]) {
        const stored = await getManifest(registry.url, `team/${tool}`, image.manifest.digest, authHeader)
        t.equal(stored.status, 200, `child ${image.platform.architecture} reached the registry`)
        t.ok(stored.bytes.equals(image.manifest.bytes), `child ${image.platform.architecture} stored byte-identical`)
      }
      const list = await getManifest(registry.url, `team/${tool}`, '1.0', authHeader)
      t.equal(list.status, 200, 'the list reached the registry')
      const listed = JSON.parse(list.bytes.toString()) as { manifests: { digest: string }[] }
      t.same(listed.manifests.map((m) => m.digest).sort(), [amd64.manifest.digest, arm64.manifest.digest].sort(), 'the list names both children')

      const pulled = assertOk(
        await cli.run(['pull', '-q', '--tls-verify=false', ...credArgs, '--arch', 'arm64', '--variant', 'v8', `${proxy.host}/team/${tool}:1.0`]),
        'pull through the proxy',
      )
      t.equal(pulled.stdout.trim(), arm64.config.digest.slice(7), 'pulled the arm64 image (its id is its config digest)')
    })
  }
}
