import t from 'tap'
import { assertOk, ContainersTool, skopeoPush } from '../helpers/clients.js'
import { ociLayoutRef, twoPlatformIndex } from '../helpers/oci-builder.js'
import { getManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Cause 2: the children live in `<name>/<arch>` and `manifest push` without --all sends the
// list alone. buildah and podman then print the registry's opaque error; through the proxy
// they name where each child really is.

for (const tool of ['buildah', 'podman'] as const) {
  for (const how of ['through the proxy', 'directly to the registry'] as const) {
    t.test(`${tool}: children pushed ${how} to <name>/<arch>, list pushed without --all`, async (t) => {
      const registry = await registryFor(t)
      const proxy = await proxyFor(t, registry.url)
      const cli = new ContainersTool(tool)
      t.teardown(() => cli.cleanup())

      const { amd64, arm64 } = twoPlatformIndex(`${tool}-${how}`)
      // Pushed through the proxy, the ledger knows where they went; pushed direct, the proxy
      // finds them by probing the configured candidate repositories.
      const childHost = how === 'through the proxy' ? proxy.host : registry.host
      assertOk(await skopeoPush(ociLayoutRef(amd64), `${childHost}/team/app/amd64:1.0`), 'push amd64 child')
      assertOk(await skopeoPush(ociLayoutRef(arm64), `${childHost}/team/app/arm64:1.0`), 'push arm64 child')

      assertOk(await cli.run(['manifest', 'create', 'localhost/list:1']), 'manifest create')
      for (const arch of ['amd64', 'arm64']) {
        assertOk(await cli.run(['manifest', 'add', '--tls-verify=false', 'localhost/list:1', `docker://${proxy.host}/team/app/${arch}:1.0`]), `manifest add ${arch}`)
      }
      // podman 4 pushes children by default; --all=false is what buildah does by default.
      const push = await cli.run(['manifest', 'push', ...(tool === 'podman' ? ['--all=false'] : []), '--tls-verify=false', 'localhost/list:1', `docker://${proxy.host}/team/app:1.0`])
      t.not(push.code, 0, `${tool} manifest push without --all fails`)
      t.match(push.stderr, `child ${amd64.manifest.digest} (linux/amd64) is not in team/app but in team/app/amd64`, 'names where the amd64 child is')
      t.match(push.stderr, `child ${arm64.manifest.digest} (linux/arm64/v8) is not in team/app but in team/app/arm64`, 'names where the arm64 child is')
      t.match(push.stderr, 'manifest push --all', 'says how to fix it')
      t.comment(`${tool} printed: ${push.stderr.trim()}`)
      t.equal((await getManifest(registry.url, 'team/app', '1.0')).status, 404, 'nothing stored')

      const fixed = await cli.run(['manifest', 'push', '--all', '--tls-verify=false', 'localhost/list:1', `docker://${proxy.host}/team/app:1.0`])
      assertOk(fixed, 'manifest push --all')
      t.equal((await getManifest(registry.url, 'team/app', '1.0')).status, 200, 'the fix works')
    })
  }
}
