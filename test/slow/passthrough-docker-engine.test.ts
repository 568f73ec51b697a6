import t, { type Test } from 'tap'
import type { Creds } from '../helpers/clients.js'
import { assertEngineOk, buildScratchImage, startDockerd } from '../helpers/dockerd.js'
import { startProxy } from '../helpers/proxy.js'
import { startRecordingRelay } from '../helpers/recording-relay.js'
import { type Registry } from '../helpers/registry.js'
import { basic, getManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The docker engine's own `docker push` and `docker pull` (not the daemon-free `docker manifest`
// commands of passthrough-docker.test.ts) through the proxy, each next to the same operation
// straight to a registry of its own: both must go the same way and store the same manifests.

const engine = await startDockerd()
t.teardown(() => engine.stop())

const creds: Creds = { user: 'dev', password: 'engine-s3cret' }

/** `docker push` prints `<tag>: digest: sha256:… size: N` last. */
function pushedDigest(output: string): string {
  const m = /digest: (sha256:[a-f0-9]{64}) size: \d+/.exec(output)
  if (m === null) throw new Error(`docker push printed no digest:\n${output}`)
  return m[1]!
}

/** The per-layer lines of `docker push` (`<id>: Pushed`, `<id>: Mounted from team/a`), ids dropped. */
function layerOutcomes(output: string): string[] {
  return output
    .split('\n')
    .map((line) => /^[0-9a-f]{12}: (.+)$/.exec(line.trim())?.[1])
    .filter((x): x is string => x !== undefined && !x.startsWith('Preparing') && !x.startsWith('Waiting'))
    .sort()
}

interface Target {
  readonly via: 'straight to the registry' | 'through the proxy'
  readonly host: string
  readonly registry: Registry
}

async function targets(t: Test, auth: boolean): Promise<{ direct: Target; proxied: Target; relay: Awaited<ReturnType<typeof startRecordingRelay>>; proxy: Awaited<ReturnType<typeof startProxy>> }> {
  const users = auth ? { users: { [creds.user]: creds.password } } : {}
  const directRegistry = await registryFor(t, users)
  const behind = await registryFor(t, users)
  // The relay between the proxy and its registry records what the engine's requests became.
  const relay = await startRecordingRelay(behind.url)
  t.teardown(() => relay.close())
  const proxy = await proxyFor(t, relay.url)
  return {
    direct: { via: 'straight to the registry', host: directRegistry.host, registry: directRegistry },
    proxied: { via: 'through the proxy', host: proxy.host, registry: behind },
    relay,
    proxy,
  }
}

async function login(t: Test, host: string): Promise<void> {
  assertEngineOk(await engine.docker(['login', '--username', creds.user, '--password-stdin', host], { input: creds.password }), `docker login ${host}`)
  t.teardown(async () => void (await engine.docker(['logout', host])))
}

/** The per-layer lines of `docker pull`: `Pull complete` for each layer it downloaded. */
function downloadedLayers(output: string): number {
  return output.split('\n').filter((line) => /^[0-9a-f]{12}: Pull complete$/.test(line.trim())).length
}

for (const auth of [false, true]) {
  t.test(`docker push and docker pull of an image built FROM scratch, ${auth ? 'with' : 'without'} auth`, async (t) => {
    const { direct, proxied, proxy } = await targets(t, auth)
    const both = [direct, proxied]
    const ref = (target: Target): string => `${target.host}/team/engine:1.0`
    // One image, tagged for both: the same content goes both ways.
    const id = await buildScratchImage(engine, `single-${auth}`, both.map(ref))
    const digests: string[] = []
    for (const target of both) {
      if (auth) await login(t, target.host)
      const push = assertEngineOk(await engine.docker(['push', ref(target)]), `docker push ${target.via}`)
      const digest = pushedDigest(push.stdout)
      digests.push(digest)
      t.same(layerOutcomes(push.stdout), ['Pushed', 'Pushed'], `both layers uploaded ${target.via}`)
      const stored = await getManifest(target.registry.url, 'team/engine', '1.0', auth ? basic(creds.user, creds.password) : undefined)
      t.equal(stored.digest, digest, `the registry holds the manifest docker pushed ${target.via}`)
    }
    t.equal(digests[1], digests[0], 'the same manifest is stored through the proxy as straight to the registry')

    for (const target of both) {
      // Gone from the engine, so the pull downloads every layer.
      assertEngineOk(await engine.docker(['image', 'rm', '--force', id]), 'docker image rm')
      t.not((await engine.docker(['image', 'inspect', id])).code, 0, `the image is gone from the engine before the pull ${target.via}`)
      const pull = assertEngineOk(await engine.docker(['pull', ref(target)]), `docker pull ${target.via}`)
      t.match(pull.stdout, `Digest: ${digests[0]}`, `docker pull ${target.via} names the pushed digest`)
      t.equal(downloadedLayers(pull.stdout), 2, `both layers downloaded ${target.via}`)
      const pulledId = assertEngineOk(await engine.docker(['image', 'inspect', '--format', '{{.Id}}', ref(target)]), 'inspect pulled').stdout.trim()
      t.equal(pulledId, id, `the pulled image is the one built, ${target.via}`)
    }
    if (auth) t.notOk(proxy.logs.raw.some((line) => line.includes(creds.password) || line.includes(basic(creds.user, creds.password).slice(6))), 'no credential in any log record')
  })
}

t.test('an image pushed to a second repository: the engine mounts its layers from the first, through the proxy', async (t) => {
  const { direct, proxied, relay, proxy } = await targets(t, false)
  const both = [direct, proxied]
  await buildScratchImage(engine, 'mount', both.flatMap((target) => [`${target.host}/team/a:1.0`, `${target.host}/team/b:1.0`]))
  const outcomes: string[][] = []
  for (const target of both) {
    const first = pushedDigest(assertEngineOk(await engine.docker(['push', `${target.host}/team/a:1.0`]), `docker push team/a ${target.via}`).stdout)
    const second = assertEngineOk(await engine.docker(['push', `${target.host}/team/b:1.0`]), `docker push team/b ${target.via}`)
    t.equal(pushedDigest(second.stdout), first, `the same manifest lands in team/b ${target.via}`)
    outcomes.push(layerOutcomes(second.stdout))
    t.same(layerOutcomes(second.stdout), ['Mounted from team/a', 'Mounted from team/a'], `docker reports both layers mounted from team/a ${target.via}`)
    const stored = await getManifest(target.registry.url, 'team/b', '1.0')
    t.equal(stored.digest, first, `team/b:1.0 is stored ${target.via}`)
  }
  t.same(outcomes[1], outcomes[0], 'the engine did the same through the proxy as straight to the registry')

  // What the engine sent for team/b, as the registry behind the proxy received it.
  const manifest = JSON.parse((await getManifest(proxied.registry.url, 'team/b', '1.0')).bytes.toString()) as { config: { digest: string }; layers: { digest: string }[] }
  const mounts = relay.requests.filter((r) => r.method === 'POST' && r.url.startsWith('/v2/team/b/blobs/uploads/') && r.url.includes('mount='))
  const mounted = mounts.map((m) => new URL(m.url, 'http://x').searchParams)
  t.same(mounted.map((q) => q.get('mount')).sort(), manifest.layers.map((l) => l.digest).sort(), "the engine's POST ?mount=&from= for each layer went through the proxy")
  t.same(mounted.map((q) => q.get('from')), ['team/a', 'team/a'], 'each names team/a as its source')
  t.same(mounts.map((m) => m.status), [201, 201], 'the registry mounted each (201 Created)')
  // The 20.10 engine uploads the small config blob rather than mounting it; no layer is uploaded again.
  const uploaded = relay.requests
    .filter((r) => r.method === 'PUT' && r.url.startsWith('/v2/team/b/blobs/uploads/'))
    .map((r) => new URL(r.url, 'http://x').searchParams.get('digest'))
  t.same(uploaded, [manifest.config.digest], 'only the config blob was uploaded to team/b')
  t.equal(proxy.logs.find((r) => r['event'] === 'mount.refused').length, 0, 'no mount was refused')
})

t.test('docker pull by digest, through the proxy and straight to the registry', async (t) => {
  const { direct, proxied, relay } = await targets(t, false)
  const both = [direct, proxied]
  const tagged = (target: Target): string => `${target.host}/team/pinned:1.0`
  const id = await buildScratchImage(engine, 'by-digest', both.map(tagged))
  const digests = []
  for (const target of both) digests.push(pushedDigest(assertEngineOk(await engine.docker(['push', tagged(target)]), `docker push ${target.via}`).stdout))
  t.equal(digests[1], digests[0], 'the same manifest both ways')
  const digest = digests[0]!
  assertEngineOk(await engine.docker(['image', 'rm', '--force', id]), 'docker image rm')
  // Through the proxy first: the engine keeps the manifests it fetched (by digest) after the
  // image is removed, so the second pull only HEADs the manifest before fetching the layers.
  for (const target of [proxied, direct]) {
    const pinned = `${target.host}/team/pinned@${digest}`
    const pull = assertEngineOk(await engine.docker(['pull', pinned]), `docker pull by digest ${target.via}`)
    t.match(pull.stdout, `Digest: ${digest}`, `the pull ${target.via} names the digest`)
    t.equal(downloadedLayers(pull.stdout), 2, `both layers downloaded ${target.via}`)
    const inspected = assertEngineOk(await engine.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RepoDigests}}', pinned]), 'inspect by digest').stdout.trim()
    t.equal(inspected, `${id} ${JSON.stringify([pinned])}`, `the image pulled by digest ${target.via} is the one built`)
    assertEngineOk(await engine.docker(['image', 'rm', pinned]), 'docker image rm by digest')
  }
  const byDigest = relay.requests.filter((r) => r.method === 'GET' && r.url === `/v2/team/pinned/manifests/${digest}`)
  t.ok(byDigest.length >= 1 && byDigest.every((r) => r.status === 200), 'the engine fetched the manifest by digest through the proxy')
  t.notOk(relay.requests.some((r) => r.method === 'GET' && r.url === '/v2/team/pinned/manifests/1.0'), 'and never by tag')
})
