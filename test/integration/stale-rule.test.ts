import t from 'tap'
import { assertOk, DockerCli, skopeo, skopeoPush } from '../helpers/clients.js'
import { buildImage, buildIndex, ociLayoutRef } from '../helpers/oci-builder.js'
import { getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The stale rule's three outcomes with real clients. A child whose tag was pushed again since
// is stale only when the tag is the list's own (`X-amd64` for list `X`); copies and mirrors of
// lists already in the registry, and lists made from floating tags, are normal; what is in
// between is forwarded with a push.warned record.

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }

t.test("reject: docker manifest create --amend after the list's own platform tag was rebuilt, the list's bytes equal to the earlier push", async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const docker = new DockerCli()
  t.teardown(() => docker.cleanup())
  const repo = `${proxy.host}/team/app`
  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: amd64, seed: 'seed-old' })), `${repo}:3.1-amd64`), 'push amd64')
  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: arm64, seed: 'seed' })), `${repo}:3.1-arm64`), 'push arm64')
  assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:3.1`, `${repo}:3.1-amd64`, `${repo}:3.1-arm64`]), 'create')
  assertOk(await docker.run(['manifest', 'push', '--insecure', `${repo}:3.1`]), 'the first list push is sound')
  const first = await getManifest(registry.url, 'team/app', '3.1')

  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: amd64, seed: 'seed-new' })), `${repo}:3.1-amd64`), 'push the rebuilt amd64')
  assertOk(await docker.run(['manifest', 'create', '--insecure', '--amend', `${repo}:3.1`, `${repo}:3.1-amd64`, `${repo}:3.1-arm64`]), 'create --amend')
  const inspect = assertOk(await docker.run(['manifest', 'inspect', '--insecure', `${repo}:3.1`]), 'inspect the local list')
  const oldAmd = (JSON.parse(first.bytes.toString()) as { manifests: { digest: string; platform: { architecture: string } }[] }).manifests.find((m) => m.platform.architecture === 'amd64')!.digest
  t.match(inspect.stdout, oldAmd, 'the amended list still names the old amd64 build')

  const push = await docker.run(['manifest', 'push', '--insecure', `${repo}:3.1`])
  t.not(push.code, 0, 'refused')
  t.match(push.stderr, 'is an old build: team/app:3.1-amd64 has been pushed again since')
  t.match(push.stderr, `docker manifest create ${repo}:3.1 ${repo}:3.1-amd64 ${repo}:3.1-arm64`, 'the fix names the list’s own platform tags')
  const rejected = proxy.logs.find((r) => r['event'] === 'push.rejected')
  t.equal(rejected.length, 1)
  t.equal(rejected[0]!['digest'], first.digest, 'the refused list has the very bytes the registry already holds as 3.1')
})

t.test('accept: a list already in the registry copied to another tag with skopeo, its floating child tags moved on', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const repo = `${proxy.host}/team/app`
  // Release 1.0 is made from the floating per-arch tags, as many pipelines do.
  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: amd64, seed: 'rel-1.0' })), `${repo}:latest-amd64`), 'latest-amd64 (1.0 build)')
  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: arm64, seed: 'rel-1.0' })), `${repo}:latest-arm64`), 'latest-arm64 (1.0 build)')
  const release = buildIndex([buildImage({ platform: amd64, seed: 'rel-1.0' }), buildImage({ platform: arm64, seed: 'rel-1.0' })])
  t.equal((await putManifest(proxy.url, 'team/app', '1.0', release.manifest)).status, 201, 'release 1.0')
  // Release 2.0 moves the floating tags on.
  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: amd64, seed: 'rel-2.0' })), `${repo}:latest-amd64`), 'latest-amd64 (2.0 build)')
  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: arm64, seed: 'rel-2.0' })), `${repo}:latest-arm64`), 'latest-arm64 (2.0 build)')

  const promote = await skopeo(['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${repo}:1.0`, `docker://${repo}:stable`])
  t.equal(promote.code, 0, `promotion 1.0 → stable with skopeo copy --all (${promote.stderr.trim()})`)
  t.equal((await getManifest(registry.url, 'team/app', 'stable')).digest, release.manifest.digest, 'stable is release 1.0')
  const rollback = await putManifest(proxy.url, 'team/app', '1.0', release.manifest)
  t.equal(rollback.status, 201, 'a CI re-run pushing 1.0 onto itself')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.rejected').length, 0, 'nothing refused')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.warned').length, 0, 'and nothing to warn about')
})

t.test('accept: a skopeo sync --all mirror, three runs, floating tags moving between runs', async (t) => {
  const source = await registryFor(t)
  const mirror = await registryFor(t)
  const proxy = await proxyFor(t, mirror.url)

  for (let run = 1; run <= 3; run++) {
    // Each run, upstream builds anew: latest-* move, `latest` names the new builds, and the
    // run's release list names what latest-* were at that time.
    const amd = buildImage({ platform: amd64, seed: `sync-${run}` })
    const arm = buildImage({ platform: arm64, seed: `sync-${run}` })
    await pushImage(source.url, 'team/app', amd, 'latest-amd64')
    await pushImage(source.url, 'team/app', arm, 'latest-arm64')
    const list = buildIndex([amd, arm])
    for (const tag of ['latest', `${run}.0`]) t.equal((await putManifest(source.url, 'team/app', tag, list.manifest)).status, 201)

    const sync = await skopeo(['sync', '--all', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false', '--dest-tls-verify=false', `${source.host}/team/app`, `${proxy.host}/mirror`], 300_000)
    t.equal(sync.code, 0, `run ${run}: skopeo sync --all succeeds (${sync.stderr.trim().split('\n').at(-1)})`)
    for (let release = 1; release <= run; release++) {
      const want = (await getManifest(source.url, 'team/app', `${release}.0`)).digest
      t.equal((await getManifest(mirror.url, 'mirror/app', `${release}.0`)).digest, want, `run ${run}: release ${release}.0 mirrored`)
    }
  }
  t.equal(proxy.logs.find((r) => r['event'] === 'push.rejected').length, 0, 'no run refused')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.warned').length, 0, 'no run warned')
  t.ok(proxy.logs.find((r) => r['event'] === 'push.accepted').length >= 2 * 3, 'every list push was checked and accepted')
})

t.test('warn: a new list whose child tag shares the list tag but names no platform was pushed again since', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const docker = new DockerCli()
  t.teardown(() => docker.cleanup())
  const repo = `${proxy.host}/team/app`
  const old = buildImage({ platform: amd64, seed: 'between-old' })
  assertOk(await skopeoPush(ociLayoutRef(old), `${repo}:4.0-build7`), 'push amd64 as 4.0-build7')
  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: arm64, seed: 'between' })), `${repo}:4.0-arm64`), 'push arm64')
  assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:4.0`, `${repo}:4.0-build7`, `${repo}:4.0-arm64`]), 'create')
  assertOk(await skopeoPush(ociLayoutRef(buildImage({ platform: amd64, seed: 'between-new' })), `${repo}:4.0-build7`), '4.0-build7 pushed again')

  const push = await docker.run(['manifest', 'push', '--insecure', `${repo}:4.0`])
  t.equal(push.code, 0, `forwarded (${push.stderr.trim()})`)
  t.equal((await getManifest(registry.url, 'team/app', '4.0')).status, 200, 'the registry holds it')
  const warned = proxy.logs.find((r) => r['event'] === 'push.warned')
  t.equal(warned.length, 1, 'one push.warned record')
  const problem = (warned[0]!['problems'] as { cause: string; digest: string; tag: string }[])[0]!
  t.same([problem.cause, problem.digest, problem.tag], ['tag-moved', old.manifest.digest, '4.0-build7'], 'says which child, which tag, and why')
})

t.test("warn (a rule's staleChild: warn for mirror targets): skopeo sync --all of an upstream that rebuilt 1.0-amd64 without pushing 1.0 again", async (t) => {
  const source = await registryFor(t)
  const mirror = await registryFor(t)
  // The README's mirror rule; `plain/**` has none, to show what the rule changes.
  const proxy = await proxyFor(t, mirror.url, { validation: { rules: [{ match: 'mirror/**', staleChild: 'warn' }] } })

  const amd = buildImage({ platform: amd64, seed: 'upstream-1.0' })
  const arm = buildImage({ platform: arm64, seed: 'upstream-1.0' })
  await pushImage(source.url, 'team/app', amd, '1.0-amd64')
  await pushImage(source.url, 'team/app', arm, '1.0-arm64')
  t.equal((await putManifest(source.url, 'team/app', '1.0', buildIndex([amd, arm]).manifest)).status, 201)
  const sync = (target: string) =>
    skopeo(['sync', '--all', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false', '--dest-tls-verify=false', `${source.host}/team/app`, `${proxy.host}/${target}`], 300_000)
  const runs: Record<string, { code: number; stderr: string }[]> = { mirror: [], plain: [] }
  for (let run = 1; run <= 3; run++) {
    // Upstream rebuilds its amd64 image after the first run, and never pushes its list 1.0 again.
    if (run === 2) await pushImage(source.url, 'team/app', buildImage({ platform: amd64, seed: 'upstream-1.0-rebuilt' }), '1.0-amd64')
    for (const target of ['mirror', 'plain'] as const) runs[target]!.push(await sync(target))
  }
  const upstream = (await getManifest(source.url, 'team/app', '1.0')).digest
  runs['mirror']!.forEach((r, i) => t.equal(r.code, 0, `mirror run ${i + 1} succeeds (${r.stderr.trim().split('\n').at(-1)})`))
  t.equal((await getManifest(mirror.url, 'mirror/app', '1.0')).digest, upstream, 'the mirror holds what upstream holds')
  const warned = proxy.logs.find((r) => r['event'] === 'push.warned' && r['repository'] === 'mirror/app')
  t.ok(warned.length >= 1, 'the staleness is recorded as push.warned')
  t.same((warned[0]!['problems'] as { cause: string; tag: string }[]).map((p) => [p.cause, p.tag]), [['stale-present', '1.0-amd64']])
  t.equal(proxy.logs.find((r) => r['event'] === 'push.rejected' && r['repository'] === 'mirror/app').length, 0, 'nothing refused in the mirror')

  t.equal(runs['plain']![0]!.code, 0, 'without the rule the first run succeeds')
  const refused = runs['plain']!.filter((r) => r.code !== 0)
  t.ok(refused.length >= 1, 'and a later run aborts: the upstream list is stale by the rule')
  t.match(refused[0]?.stderr, 'is an old build: plain/app:1.0-amd64 has been pushed again since')
})
