import t, { type Test } from 'tap'
import { assertOk, ContainersTool, DockerCli, skopeo, skopeoPush } from '../helpers/clients.js'
import { buildImage, ociLayoutRef } from '../helpers/oci-builder.js'
import { type RunningProxy } from '../helpers/proxy.js'
import { getManifest, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The release workflows of the stale rule (README "When is a child stale?"), each run with the
// real tools twice: straight to a registry and through the proxy to another, then what both
// registries hold is read back. The deliberate ones (rollback, pinned promotion, yank) must
// end alike; the stale ones (bare per-arch tags, a list job racing another pipeline, and the
// same list laundered by digest) must be refused through the proxy with a fix that fits.

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }

interface Side {
  /** What the tools are pointed at: the registry itself, or the proxy in front of another. */
  readonly host: string
  readonly url: string
  /** The registry behind, to read back. */
  readonly registryUrl: string
  readonly docker: DockerCli
  readonly proxy: RunningProxy | undefined
}

/** Runs `flow` straight to a registry and through the proxy; returns both sides. */
async function sideBySide<T>(t: Test, flow: (side: Side) => Promise<T>): Promise<{ direct: Side & { result: T }; proxied: Side & { result: T } }> {
  const straight = await registryFor(t)
  const behind = await registryFor(t)
  const proxy = await proxyFor(t, behind.url)
  const sides: Side[] = [
    { host: straight.host, url: straight.url, registryUrl: straight.url, docker: new DockerCli(), proxy: undefined },
    { host: proxy.host, url: proxy.url, registryUrl: behind.url, docker: new DockerCli(), proxy },
  ]
  for (const side of sides) t.teardown(() => side.docker.cleanup())
  const [direct, proxied] = [{ ...sides[0]!, result: await flow(sides[0]!) }, { ...sides[1]!, result: await flow(sides[1]!) }]
  return { direct, proxied }
}

/** tag → digest of what a registry holds, for comparing the two sides. */
async function holdings(registryUrl: string, tags: readonly string[]): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {}
  for (const tag of tags) {
    const m = await getManifest(registryUrl, 'team/app', tag)
    out[tag] = m.status === 200 ? m.digest : null
  }
  return out
}

function childrenOf(bytes: Buffer): { digest: string; platform: { architecture: string } }[] {
  return (JSON.parse(bytes.toString()) as { manifests: { digest: string; platform: { architecture: string } }[] }).manifests
}

const image = (arch: typeof amd64, seed: string) => ociLayoutRef(buildImage({ platform: arch, seed }))
const events = (proxy: RunningProxy, event: string) => proxy.logs.find((r) => r['event'] === event)
const causes = (record: Record<string, unknown>) => (record['problems'] as { cause: string; tag?: string; releasedAs?: string }[]).map((p) => [p.cause, p.tag, p.releasedAs])

t.test('warn (released-copy), rollback: skopeo copy --all app:1.0.0 app:latest after 1.1.0, lists made with docker manifest create/push', async (t) => {
  const { direct, proxied } = await sideBySide(t, async ({ host, docker }) => {
    const repo = `${host}/team/app`
    // GoReleaser-style: each release's images as 1.x.y-<arch> and latest-<arch>, lists 1.x.y and latest.
    for (const version of ['1.0.0', '1.1.0']) {
      for (const [arch, word] of [[amd64, 'amd64'], [arm64, 'arm64']] as const) {
        for (const tag of [`${version}-${word}`, `latest-${word}`]) assertOk(await skopeoPush(image(arch, `rollback-${version}`), `${repo}:${tag}`), `push ${tag}`)
      }
      for (const list of [version, 'latest']) {
        assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:${list}`, `${repo}:${list}-amd64`, `${repo}:${list}-arm64`]), `create ${list}`)
        assertOk(await docker.run(['manifest', 'push', '--purge', '--insecure', `${repo}:${list}`]), `push ${list} (${version})`)
      }
    }
    return skopeo(['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${repo}:1.0.0`, `docker://${repo}:latest`])
  })
  t.equal(direct.result.code, 0, 'straight to the registry: rolled back')
  t.equal(proxied.result.code, 0, `through the proxy: rolled back too (${proxied.result.stderr.trim()})`)
  const tags = ['1.0.0', '1.1.0', 'latest', 'latest-amd64', '1.0.0-amd64']
  const held = await holdings(proxied.registryUrl, tags)
  t.same(held, await holdings(direct.registryUrl, tags), 'both registries hold the same')
  t.equal(held['latest'], held['1.0.0'], 'latest is release 1.0.0 again')
  const proxy = proxied.proxy!
  t.equal(events(proxy, 'push.rejected').length, 0, 'nothing refused')
  const warned = events(proxy, 'push.warned')
  t.equal(warned.length, 1, 'the rollback is recorded as push.warned')
  t.equal(warned[0]!['reference'], 'latest')
  t.same(causes(warned[0]!), [['released-copy', 'latest-amd64', '1.0.0'], ['released-copy', 'latest-arm64', '1.0.0']], 'a copy of release 1.0.0, whose latest-<arch> moved on')

  // What no rule tells apart (README): the rollback run again re-sends the list onto the tag
  // that holds it, judged by latest's own tags; the message says nothing needs pushing.
  const again = await skopeo(['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${proxied.host}/team/app:1.0.0`, `docker://${proxied.host}/team/app:latest`])
  t.not(again.code, 0, 'the same copy run again is refused')
  t.match(again.stderr, 'is an old build: team/app:latest-amd64 has been pushed again since')
  t.match(again.stderr, 'it is team/app:1.0.0 too: to point team/app:latest at that release, nothing needs pushing, it already does')
  t.equal((await getManifest(proxied.registryUrl, 'team/app', 'latest')).digest, held['1.0.0'], 'latest still names release 1.0.0')
})

t.test('accept, pinned promotion: buildah manifest add …@sha256 of the day-2 build, manifest push --all into stable, once made from nightly-<arch>', async (t) => {
  const { direct, proxied } = await sideBySide(t, async ({ host, registryUrl, docker }) => {
    const repo = `${host}/team/app`
    const day2: string[] = []
    for (const day of [1, 2, 3]) {
      for (const [arch, word] of [[amd64, 'amd64'], [arm64, 'arm64']] as const) assertOk(await skopeoPush(image(arch, `nightly-${day}`), `${repo}:nightly-${word}`), `day ${day}: nightly-${word}`)
      const lists = day === 1 ? ['nightly', 'stable'] : ['nightly']
      for (const list of lists) {
        assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:${list}`, `${repo}:nightly-amd64`, `${repo}:nightly-arm64`]), `create ${list}`)
        assertOk(await docker.run(['manifest', 'push', '--purge', '--insecure', `${repo}:${list}`]), `day ${day}: push ${list}`)
      }
      if (day === 2) for (const word of ['amd64', 'arm64']) day2.push((await getManifest(registryUrl, 'team/app', `nightly-${word}`)).digest!)
    }
    // Day 3: QA promotes the tested day-2 build by digest, not the day-3 build nightly-<arch> names now.
    const buildah = new ContainersTool('buildah')
    try {
      assertOk(await buildah.run(['manifest', 'create', 'promote']), 'buildah manifest create')
      for (const digest of day2) assertOk(await buildah.run(['manifest', 'add', '--tls-verify=false', 'promote', `docker://${repo}@${digest}`]), `buildah manifest add @${digest}`)
      const push = await buildah.run(['manifest', 'push', '--all', '--tls-verify=false', 'promote', `docker://${repo}:stable`])
      return { push, day2 }
    } finally {
      buildah.cleanup()
    }
  })
  t.equal(direct.result.push.code, 0, 'straight to the registry: promoted')
  t.equal(proxied.result.push.code, 0, `through the proxy: promoted too (${proxied.result.push.stderr.trim()})`)
  for (const side of [direct, proxied]) {
    const stable = await getManifest(side.registryUrl, 'team/app', 'stable')
    t.same(childrenOf(stable.bytes).map((c) => c.digest).sort(), [...side.result.day2].sort(), `${side.proxy === undefined ? 'straight' : 'through the proxy'}: stable is the day-2 build`)
  }
  t.same(direct.result.day2, proxied.result.day2, 'the same builds on both sides')
  t.equal(events(proxied.proxy!, 'push.rejected').length, 0, 'nothing refused')
  t.equal(events(proxied.proxy!, 'push.warned').length, 0, 'nightly-<arch> is not stable’s own tag: nothing to warn about')
})

t.test('warn (released-copy), yank: the bad rebuild of 1.0 DELETEd, the older list GET by digest and PUT by tag', async (t) => {
  const { direct, proxied } = await sideBySide(t, async ({ host, url, registryUrl, docker }) => {
    const repo = `${host}/team/app`
    const release = async (build: string): Promise<string> => {
      assertOk(await skopeoPush(image(amd64, `yank-${build}`), `${repo}:1.0-amd64`), `${build} 1.0-amd64`)
      assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), `create 1.0 (${build})`)
      assertOk(await docker.run(['manifest', 'push', '--purge', '--insecure', `${repo}:1.0`]), `push 1.0 (${build})`)
      return (await getManifest(registryUrl, 'team/app', '1.0')).digest!
    }
    assertOk(await skopeoPush(image(arm64, 'yank-good'), `${repo}:1.0-arm64`), '1.0-arm64')
    const good = await release('good')
    const bad = await release('bad')
    const deleted = await fetch(`${url}/v2/team/app/manifests/${bad}`, { method: 'DELETE' })
    await deleted.arrayBuffer()
    const older = await getManifest(url, 'team/app', good)
    const put = await putManifest(url, 'team/app', '1.0', { bytes: older.bytes, mediaType: older.contentType! })
    return { deleted: deleted.status, got: older.status, put: put.status, putBody: await put.text(), good, bad }
  })
  for (const side of [direct, proxied]) {
    const where = side.proxy === undefined ? 'straight' : 'through the proxy'
    t.same([side.result.deleted, side.result.got, side.result.put], [202, 200, 201], `${where}: DELETE 202, GET 200, PUT 201 (${side.result.putBody})`)
  }
  const tags = ['1.0', '1.0-amd64', '1.0-arm64']
  const held = await holdings(proxied.registryUrl, tags)
  t.same(held, await holdings(direct.registryUrl, tags), 'both registries hold the same')
  t.equal(held['1.0'], proxied.result.good, 'release 1.0 is the good list again')
  const warned = events(proxied.proxy!, 'push.warned')
  t.equal(warned.length, 1, 'the restore is recorded as push.warned')
  t.same(causes(warned[0]!), [['released-copy', '1.0-amd64', '1.0']], 'an earlier value of 1.0, whose 1.0-amd64 still names the withdrawn build')
})

t.test('reject (re-sent, bare platform tags): app:amd64 rebuilt, the old list pushed again to latest by docker manifest create --amend', async (t) => {
  const { direct, proxied } = await sideBySide(t, async ({ host, docker }) => {
    const repo = `${host}/team/app`
    assertOk(await skopeoPush(image(amd64, 'bare-old'), `${repo}:amd64`), 'amd64')
    assertOk(await skopeoPush(image(arm64, 'bare'), `${repo}:arm64`), 'arm64')
    assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:latest`, `${repo}:amd64`, `${repo}:arm64`]), 'create latest')
    assertOk(await docker.run(['manifest', 'push', '--insecure', `${repo}:latest`]), 'push latest')
    assertOk(await skopeoPush(image(amd64, 'bare-new'), `${repo}:amd64`), 'amd64 rebuilt')
    assertOk(await docker.run(['manifest', 'create', '--insecure', '--amend', `${repo}:latest`, `${repo}:amd64`, `${repo}:arm64`]), 'create --amend (keeps its cached amd64 entry)')
    return docker.run(['manifest', 'push', '--insecure', `${repo}:latest`])
  })
  const old = buildImage({ platform: amd64, seed: 'bare-old' }).manifest.digest
  const rebuilt = buildImage({ platform: amd64, seed: 'bare-new' }).manifest.digest
  t.equal(direct.result.code, 0, 'straight to the registry: stored, the old amd64 build shipped as latest')
  t.ok(childrenOf((await getManifest(direct.registryUrl, 'team/app', 'latest')).bytes).some((c) => c.digest === old), 'the silent stale ship')
  t.not(proxied.result.code, 0, 'through the proxy: refused')
  const repo = `${proxied.host}/team/app`
  t.match(proxied.result.stderr, `stale child ${old} (linux/amd64) is an old build: team/app:amd64 has been pushed again since, as ${rebuilt.slice(0, 19)}`)
  t.match(proxied.result.stderr, `docker manifest rm ${repo}:latest; docker manifest create ${repo}:latest ${repo}:amd64 ${repo}:arm64; docker manifest push ${repo}:latest`, 'the fix: the list from the bare platform tags')
  // The fix, as printed, works.
  const docker = proxied.docker
  assertOk(await docker.run(['manifest', 'rm', `${repo}:latest`]), 'manifest rm')
  assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:latest`, `${repo}:amd64`, `${repo}:arm64`]), 'create')
  assertOk(await docker.run(['manifest', 'push', '--insecure', `${repo}:latest`]), 'the fixed list goes through')
  t.ok(childrenOf((await getManifest(proxied.registryUrl, 'team/app', 'latest')).bytes).some((c) => c.digest === rebuilt), 'latest ships the rebuilt amd64')
})

t.test('reject (assembled anew): the list job races another pipeline whose nightly-amd64 lands before the push; then laundered by digest: warn (tag-moved), and still refused by tag', async (t) => {
  const { direct, proxied } = await sideBySide(t, async ({ host, docker }) => {
    const repo = `${host}/team/app`
    // Yesterday's nightly, then today's builds.
    for (const day of ['day1', 'day2']) {
      for (const [arch, word] of [[amd64, 'amd64'], [arm64, 'arm64']] as const) assertOk(await skopeoPush(image(arch, `race-${day}`), `${repo}:nightly-${word}`), `${day}: nightly-${word}`)
      if (day === 'day1') {
        assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:nightly`, `${repo}:nightly-amd64`, `${repo}:nightly-arm64`]), 'create (day 1)')
        assertOk(await docker.run(['manifest', 'push', '--purge', '--insecure', `${repo}:nightly`]), 'push (day 1)')
      }
    }
    assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:nightly`, `${repo}:nightly-amd64`, `${repo}:nightly-arm64`]), 'the list job assembles its list')
    assertOk(await skopeoPush(image(amd64, 'race-other-pipeline'), `${repo}:nightly-amd64`), "another pipeline's nightly-amd64 lands")
    return docker.run(['manifest', 'push', '--insecure', `${repo}:nightly`])
  })
  const assembled = buildImage({ platform: amd64, seed: 'race-day2' }).manifest.digest
  t.equal(direct.result.code, 0, 'straight to the registry: stored, naming the superseded build')
  t.not(proxied.result.code, 0, 'through the proxy: refused')
  const repo = `${proxied.host}/team/app`
  t.match(proxied.result.stderr, `stale child ${assembled} (linux/amd64) is an old build: team/app:nightly-amd64 has been pushed again since`)
  t.match(proxied.result.stderr, `docker manifest create ${repo}:nightly ${repo}:nightly-amd64 ${repo}:nightly-arm64`, 'the fix: assemble it again from the list’s own tags')
  const proxy = proxied.proxy!
  const nightly = (await getManifest(proxied.registryUrl, 'team/app', 'nightly')).digest

  // The very bytes docker sent (the registry straight holds them) pushed by digest: a push by
  // digest moves no tag and releases nothing, so it is forwarded with a warning …
  const stale = await getManifest(direct.registryUrl, 'team/app', 'nightly')
  const byDigest = await putManifest(proxy.url, 'team/app', stale.digest!, { bytes: stale.bytes, mediaType: stale.contentType! })
  t.equal(byDigest.status, 201, `by digest: forwarded (${await byDigest.text()})`)
  const warned = events(proxy, 'push.warned')
  t.equal(warned.length, 1)
  t.same(causes(warned[0]!), [['tag-moved', 'nightly-amd64', undefined]], 'warned: a tag of a child moved')
  // … and the same list by tag again is refused as before, though the registry now stores it.
  const again = await proxied.docker.run(['manifest', 'push', '--insecure', `${repo}:nightly`])
  t.not(again.code, 0, 'by tag after by digest: still refused')
  t.match(again.stderr, 'team/app:nightly-amd64 has been pushed again since')
  t.equal((await getManifest(proxied.registryUrl, 'team/app', 'nightly')).digest, nightly, 'nightly still names the day-1 list')
  t.equal(events(proxy, 'push.rejected').length, 2, 'two refusals recorded')
})
