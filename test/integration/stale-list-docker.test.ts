import t from 'tap'
import { assertOk, DockerCli, skopeoPush } from '../helpers/clients.js'
import { buildImage, ociLayoutRef } from '../helpers/oci-builder.js'
import { startProxy } from '../helpers/proxy.js'
import { getManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The stale-list story with the real docker CLI (docs/clients.md): the platform image is
// rebuilt and re-pushed, but `docker manifest create --amend` reuses the old child digests it
// saved locally.

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }

for (const format of ['oci', 'v2s2'] as const) {
  t.test(`${format}: stale list after the old child was garbage-collected`, async (t) => {
    const registry = await registryFor(t)
    const proxy = await proxyFor(t, registry.url)
    const docker = new DockerCli()
    t.teardown(() => docker.cleanup())
    const repo = `${proxy.host}/team/app`

    const oldAmd = buildImage({ platform: amd64, seed: `old-${format}` })
    const arm = buildImage({ platform: arm64, seed: `old-${format}` })
    assertOk(await skopeoPush(ociLayoutRef(oldAmd), `${repo}:1.0-amd64`, { format }), 'push amd64')
    assertOk(await skopeoPush(ociLayoutRef(arm), `${repo}:1.0-arm64`, { format }), 'push arm64')
    assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), 'create list (kept locally)')
    const oldDigest = (await getManifest(registry.url, 'team/app', '1.0-amd64')).digest!

    // Rebuild amd64, push it; the old build is now untagged and garbage collection takes it.
    const newAmd = buildImage({ platform: amd64, seed: `new-${format}` })
    assertOk(await skopeoPush(ociLayoutRef(newAmd), `${repo}:1.0-amd64`, { format }), 'push rebuilt amd64')
    const newDigest = (await getManifest(registry.url, 'team/app', '1.0-amd64')).digest!
    await registry.garbageCollect({ deleteUntagged: true })
    t.equal((await getManifest(registry.url, 'team/app', oldDigest)).status, 404, 'the old amd64 child is gone')

    // --amend keeps the saved descriptors: the list still names the old child.
    assertOk(await docker.run(['manifest', 'create', '--insecure', '--amend', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), 'create --amend')
    const push = await docker.run(['manifest', 'push', '--insecure', `${repo}:1.0`])
    t.not(push.code, 0, 'docker manifest push fails')
    const printed = push.stderr
    t.match(printed, 'manifest blob unknown: stale child', 'docker prints our explanation, not the bare registry error')
    t.match(printed, oldDigest, 'names the stale digest')
    t.match(printed, 'linux/amd64', 'names the platform')
    t.match(printed, 'team/app:1.0-amd64', 'names the tag')
    t.match(printed, newDigest.slice(0, 19), 'names where that tag points now')
    t.match(printed, `docker manifest rm ${repo}:1.0`, 'gives the fix')
    t.match(printed, /\[manifest-guard request [0-9a-f]{12}\]/, 'gives the request id to quote')
    t.equal((await getManifest(registry.url, 'team/app', '1.0')).status, 404, 'nothing was stored')

    const records = proxy.logs.find((r) => r['event'] === 'push.rejected')
    t.equal(records.length, 1, 'one decision record')
    t.equal((records[0]!['problems'] as { cause: string }[])[0]!.cause, 'stale')

    // The fix works: a fresh list from the current images goes through.
    assertOk(await docker.run(['manifest', 'rm', `${repo}:1.0`]), 'manifest rm')
    assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), 'create again')
    assertOk(await docker.run(['manifest', 'push', '--insecure', `${repo}:1.0`]), 'push the fixed list')
  })
}

t.test('stale list while the old child still exists', async (t) => {
  const registry = await registryFor(t)

  const story = async (values: Record<string, unknown>) => {
    const proxy = await startProxy(registry.url, values)
    const docker = new DockerCli()
    const repo = `${proxy.host}/team/app`
    const old = buildImage({ platform: amd64, seed: 'present-old' })
    const arm = buildImage({ platform: arm64, seed: 'present' })
    assertOk(await skopeoPush(ociLayoutRef(old), `${repo}:2.0-amd64`), 'push amd64')
    assertOk(await skopeoPush(ociLayoutRef(arm), `${repo}:2.0-arm64`), 'push arm64')
    assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:2.0`, `${repo}:2.0-amd64`, `${repo}:2.0-arm64`]), 'create')
    assertOk(await docker.run(['manifest', 'push', '--insecure', `${repo}:2.0`]), 'first list push is fine')
    const rebuilt = buildImage({ platform: amd64, seed: `present-new-${JSON.stringify(values)}` })
    assertOk(await skopeoPush(ociLayoutRef(rebuilt), `${repo}:2.0-amd64`), 'push rebuilt amd64')
    assertOk(await docker.run(['manifest', 'create', '--insecure', '--amend', `${repo}:2.0`, `${repo}:2.0-amd64`, `${repo}:2.0-arm64`]), 'create --amend')
    const push = await docker.run(['manifest', 'push', '--insecure', `${repo}:2.0`])
    docker.cleanup()
    await proxy.close()
    return { push, old, rebuilt, logs: proxy.logs }
  }

  t.test('rejected by default, naming the superseded tag and both digests', async (t) => {
    const { push, old, rebuilt } = await story({})
    t.not(push.code, 0)
    t.match(push.stderr, `stale child ${old.manifest.digest} (linux/amd64) is an old build`)
    t.match(push.stderr, 'team/app:2.0-amd64 has been pushed again since')
    t.match(push.stderr, rebuilt.manifest.digest.slice(0, 19))
    t.match(push.stderr, 'the registry would accept this list')
  })

  t.test('with staleChild: warn it is accepted and logged', async (t) => {
    const { push, old, logs } = await story({ validation: { staleChild: 'warn' } })
    t.equal(push.code, 0, 'docker manifest push succeeds')
    const warned = logs.find((r) => r['event'] === 'push.warned')
    t.equal(warned.length, 1, 'one push.warned record')
    t.equal((warned[0]!['problems'] as { cause: string; digest: string }[])[0]!.digest, old.manifest.digest)
    t.equal(warned[0]!['level'], 'warn')
  })
})
