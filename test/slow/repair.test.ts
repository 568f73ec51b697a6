import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { assertOk, ContainersTool, DockerCli, skopeo, skopeoPush } from '../helpers/clients.js'
import { buildImage, buildIndex, ociLayoutRef, twoPlatformIndex } from '../helpers/oci-builder.js'
import { CLI, spawnProxy } from '../helpers/proxy.js'
import { startRecordingRelay } from '../helpers/recording-relay.js'
import { basic, getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { startTokenServer } from '../helpers/token-server.js'
import { run, waitFor } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// validation.repair: copy-children. A list whose children were left in other repositories of
// the same registry is mended on the server — each child copied into the target with the
// client's own credentials — and then goes upstream unchanged. Off by default.

const REPAIR = { validation: { rules: [{ match: 'team/**', repair: 'copy-children' }] } }

/** Every child and every blob of `list` is in `repository`, checked by manifest-guard check and pulled by digest. */
async function assertWhole(t: Test, registryHost: string, repository: string, tag: string, children: readonly string[]): Promise<void> {
  const checked = await run(process.execPath, [CLI, 'check', `${registryHost}/${repository}:${tag}`])
  t.equal(checked.code, 0, `manifest-guard check: sound (${checked.stdout.trim()})`)
  for (const digest of children) {
    const dir = mkdtempSync(join(tmpdir(), 'mg-pulled-'))
    const pulled = await skopeo(['copy', '--src-tls-verify=false', `docker://${registryHost}/${repository}@${digest}`, `oci:${dir}:x`])
    t.equal(pulled.code, 0, `skopeo pulls ${digest.slice(0, 19)} from ${repository} (${pulled.stderr.trim()})`)
  }
}

for (const tool of ['buildah', 'podman'] as const) {
  t.test(`${tool} manifest push without --all, children in team/app/amd64 and team/app/arm64: repaired`, async (t) => {
    const registry = await registryFor(t)
    const proxy = await proxyFor(t, registry.url, REPAIR)
    const cli = new ContainersTool(tool)
    t.teardown(() => cli.cleanup())
    const { amd64, arm64 } = twoPlatformIndex(`repair-${tool}`)
    assertOk(await skopeoPush(ociLayoutRef(amd64), `${registry.host}/team/app/amd64:1.0`), 'amd64 child, in its own repository')
    assertOk(await skopeoPush(ociLayoutRef(arm64), `${registry.host}/team/app/arm64:1.0`), 'arm64 child, in its own repository')
    assertOk(await cli.run(['manifest', 'create', 'localhost/list:1']), 'manifest create')
    for (const arch of ['amd64', 'arm64']) assertOk(await cli.run(['manifest', 'add', '--tls-verify=false', 'localhost/list:1', `docker://${proxy.host}/team/app/${arch}:1.0`]), `add ${arch}`)

    const push = await cli.run(['manifest', 'push', ...(tool === 'podman' ? ['--all=false'] : []), '--tls-verify=false', 'localhost/list:1', `docker://${proxy.host}/team/app:1.0`])
    t.equal(push.code, 0, `${tool} manifest push without --all succeeds (${push.stderr.trim()})`)
    const stored = await getManifest(registry.url, 'team/app', '1.0')
    t.equal(stored.status, 200, 'the list is in team/app')
    const children = (JSON.parse(stored.bytes.toString()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)
    await assertWhole(t, registry.host, 'team/app', '1.0', children)

    const repaired = proxy.logs.find((r) => r['event'] === 'push.repaired')
    t.equal(repaired.length, 1, 'one push.repaired record')
    t.match(repaired[0]!['repair'], { blobsStreamed: 0, bytesStreamed: 0 }, 'every blob mounted, none streamed')
    t.same(((repaired[0]!['repair'] as { children: { from: string }[] }).children.map((c) => c.from)).sort(), ['team/app/amd64', 'team/app/arm64'])
    t.equal((repaired[0]!['repair'] as { children: unknown[] }).children.length, 2)
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text()
    t.match(metrics, /manifest_guard_repairs_total\{result="copied"\} 1/)
  })
}

t.test('the list goes upstream unchanged, with a header saying what was copied', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, REPAIR)
  const { amd64, arm64, index } = twoPlatformIndex('repair-raw')
  await pushImage(registry.url, 'team/app/amd64', amd64, '1.0')
  await pushImage(registry.url, 'team/app/arm64', arm64, '1.0')
  const res = await putManifest(proxy.url, 'team/app', '1.0', index.manifest)
  t.equal(res.status, 201, await res.text())
  t.equal(res.headers.get('docker-content-digest'), index.manifest.digest, 'the digest the client computed')
  t.equal(res.headers.get('x-manifest-guard-repaired'), '2 children from team/app/amd64, team/app/arm64')
  t.ok((await getManifest(registry.url, 'team/app', '1.0')).bytes.equals(index.manifest.bytes), 'byte-identical')

  const off = await proxyFor(t, registry.url)
  const other = twoPlatformIndex('repair-off')
  await pushImage(registry.url, 'team/other/amd64', other.amd64, '1.0')
  await pushImage(registry.url, 'team/other/arm64', other.arm64, '1.0')
  const refused = await putManifest(off.url, 'team/other', '1.0', other.index.manifest)
  t.equal(refused.status, 400, 'repair: off (the default) rejects as before')
  t.match(await refused.text(), 'is not in team/other but in team/other/amd64')
  t.equal((await getManifest(registry.url, 'team/other', other.amd64.manifest.digest)).status, 404, 'and copies nothing')
})

t.test('docker manifest create and push, children elsewhere, with repair on', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, REPAIR)
  const { amd64, arm64 } = twoPlatformIndex('repair-docker')
  await pushImage(registry.url, 'team/app/amd64', amd64, '1.0')
  await pushImage(registry.url, 'team/app/arm64', arm64, '1.0')
  const docker = new DockerCli()
  t.teardown(() => docker.cleanup())
  assertOk(await docker.run(['manifest', 'create', '--insecure', `${proxy.host}/team/app:1.0`, `${proxy.host}/team/app/amd64:1.0`, `${proxy.host}/team/app/arm64:1.0`]), 'create')
  assertOk(await docker.run(['manifest', 'push', '--insecure', `${proxy.host}/team/app:1.0`]), 'docker manifest push')
  await assertWhole(t, registry.host, 'team/app', '1.0', [amd64.manifest.digest, arm64.manifest.digest])
})

t.test('a 256 MiB layer the registry will not mount is streamed across: memory stays flat', async (t) => {
  const registry = await registryFor(t)
  const relay = await startRecordingRelay(registry.url, { refuseMounts: true })
  t.teardown(() => relay.close())
  const proxy = await spawnProxy(['--upstream', relay.url, '--validation-repair', 'copy-children'])
  t.teardown(() => proxy.stop())
  const big = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'repair-big', layerBytes: 256 << 20 })
  const small = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'repair-big' })
  await pushImage(registry.url, 'team/app/amd64', big, '1.0')
  await pushImage(registry.url, 'team/app/arm64', small, '1.0')
  const before = proxy.peakRss()
  const list = buildIndex([big, small])
  const res = await putManifest(proxy.url, 'team/app', '1.0', list.manifest)
  t.equal(res.status, 201, `repaired (${await res.text()})`)
  t.ok(relay.requests.some((r) => r.method === 'PUT' && r.url.includes(`digest=${encodeURIComponent(big.layers[0]!.digest)}`) || (r.method === 'PUT' && r.url.includes(big.layers[0]!.digest))), 'the big layer was streamed into an upload')
  const peak = proxy.peakRss()
  t.ok(peak < 200 << 20, `peak RSS ${Math.round(peak / 2 ** 20)} MiB after copying 256 MiB (${Math.round(before / 2 ** 20)} before)`)
  // The child process writes its log line a moment after the client has its answer.
  await waitFor(async () => /"event":"push.repaired"/.test(proxy.output()), 10_000, 'the push.repaired record in the log').catch(() => {})
  t.match(proxy.output(), /"event":"push.repaired".*"blobsStreamed":[3-9]/)
  await assertWhole(t, registry.host, 'team/app', '1.0', [big.manifest.digest, small.manifest.digest])
})

t.test('credentials that cannot read the source: rejected exactly as today, nothing copied', async (t) => {
  const users = {
    alice: { password: 'alice-pw', grants: { 'team/**': ['pull', 'push'] as const } },
    bob: { password: 'bob-pw', grants: { 'team/app': ['pull', 'push'] as const } },
  }
  const tokens = await startTokenServer({ users })
  t.teardown(() => tokens.close())
  const registry = await registryFor(t, { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertPath: tokens.rootCertPath } })
  const proxy = await proxyFor(t, registry.url, REPAIR)
  const plain = await proxyFor(t, registry.url)
  const alice = { user: 'alice', password: 'alice-pw' }
  const { amd64, arm64 } = twoPlatformIndex('repair-denied')
  assertOk(await skopeoPush(ociLayoutRef(amd64), `${registry.host}/team/app/amd64:1.0`, { creds: alice }), 'alice pushes amd64')
  assertOk(await skopeoPush(ociLayoutRef(arm64), `${registry.host}/team/app/arm64:1.0`, { creds: alice }), 'alice pushes arm64')
  const answers: string[] = []
  for (const p of [proxy, plain]) {
    const cli = new ContainersTool('buildah')
    t.teardown(() => cli.cleanup())
    assertOk(await cli.run(['manifest', 'create', 'localhost/list:1']), 'create')
    for (const arch of ['amd64', 'arm64']) assertOk(await cli.run(['manifest', 'add', '--tls-verify=false', '--creds', 'alice:alice-pw', 'localhost/list:1', `docker://${registry.host}/team/app/${arch}:1.0`]), `add ${arch}`)
    const push = await cli.run(['manifest', 'push', '--tls-verify=false', '--creds', 'bob:bob-pw', 'localhost/list:1', `docker://${p.host}/team/app:1.0`])
    t.not(push.code, 0, 'bob cannot push it')
    answers.push(push.stderr.replace(/request [0-9a-f]{12}/g, 'request …').replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'HOST'))
  }
  t.equal(answers[0], answers[1], 'the same answer with repair on as with it off')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.repaired').length, 0)
  const aliceToken = basic('alice', 'alice-pw')
  const copied = await fetch(`${registry.url}/v2/team/app/manifests/${amd64.manifest.digest}`, { method: 'HEAD', headers: { authorization: aliceToken } })
  t.not(copied.status, 200, 'nothing was copied into team/app')
})

t.test('a copy that fails half-way: no list forwarded, a clear error', async (t) => {
  const registry = await registryFor(t)
  const relay = await startRecordingRelay(registry.url, { refuseMounts: true })
  t.teardown(() => relay.close())
  const proxy = await proxyFor(t, relay.url, REPAIR)
  const big = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'repair-kill', layerBytes: 128 << 20 })
  const small = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'repair-kill' })
  await pushImage(registry.url, 'team/app/amd64', big, '1.0')
  await pushImage(registry.url, 'team/app/arm64', small, '1.0')
  const pushing = putManifest(proxy.url, 'team/app', '1.0', buildIndex([big, small]).manifest)
  // Kill the registry once the big layer is on its way across.
  const streaming = (): boolean => relay.requests.some((r) => r.method === 'GET' && r.url.endsWith(big.layers[0]!.digest))
  for (let i = 0; i < 400 && !streaming(); i++) await new Promise((r) => setTimeout(r, 25))
  t.ok(streaming(), 'the copy had started')
  await registry.kill()
  const res = await pushing
  const body = await res.text()
  t.equal(res.status, 400, 'the rejection the client gets without repair')
  t.match(body, 'is not in team/app but in team/app/amd64', 'still naming where the children are')
  t.match(body, 'manifest-guard tried to copy the children into this repository (validation.repair: copy-children) and stopped', 'and what was tried')
  await registry.start()
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).status, 404, 'no list was forwarded')
  const failed = proxy.logs.find((r) => r['event'] === 'push.rejected')
  t.type((failed[0]?.['repair'] as { failed?: string } | undefined)?.failed, 'string', 'the record says why the repair stopped')
})
