import t from 'tap'
import { assertOk, DockerCli } from '../helpers/clients.js'
import { buildImage, type Descriptor, MT } from '../helpers/oci-builder.js'
import { startProxy } from '../helpers/proxy.js'
import { json } from '../helpers/real-world.js'
import { errorsOf, getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Lists are what they claim, side by side: the same pushes straight to the registry (which
// stores them) and through the proxy, then what the registry holds.

const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'pt-it' })
const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'pt-it' })

function list(entries: readonly Descriptor[]) {
  return json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: entries }, MT.ociIndex)
}

/** amd64's image labelled arm64 and arm64's labelled amd64: the CI outputs swapped. */
const swapped = list([
  { ...arm.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
  { ...amd.descriptor, platform: { os: 'linux', architecture: 'arm64' } },
])
const whole = list([amd.descriptor, arm.descriptor])
const partial = list([amd.descriptor])

t.test('platform truth and required platforms, straight and through the proxy', async (t) => {
  const registry = await registryFor(t)
  const proxy = await startProxy(registry.url, {
    validation: {
      rules: [
        { match: 'mirror/**', platformMismatch: 'warn' },
        { match: 'release/**', requiredPlatforms: ['linux/amd64', 'linux/arm64'] },
      ],
    },
  })
  t.teardown(() => proxy.close())
  for (const repo of ['direct/app', 'team/app', 'mirror/app', 'release/app']) {
    await pushImage(registry.url, repo, amd)
    await pushImage(registry.url, repo, arm)
  }

  await t.test('swapped labels: stored straight (201), refused through the proxy', async (t) => {
    const direct = await putManifest(registry.url, 'direct/app', '1.0', swapped)
    t.equal(direct.status, 201, 'the registry stores a mislabelled list')
    const res = await putManifest(proxy.url, 'team/app', '1.0', swapped, undefined, undefined)
    t.equal(res.status, 400)
    const errors = await errorsOf(res)
    t.equal(errors.length, 2, 'one error per mislabelled entry')
    t.ok(errors.every((e) => e.code === 'MANIFEST_INVALID'))
    t.match(errors[0]!.message, `mislabelled child ${arm.manifest.digest}: entry says linux/amd64, the image is linux/arm64`)
    t.match(errors[1]!.message, `entry says linux/arm64, the image is linux/amd64`)
    t.equal((await getManifest(registry.url, 'team/app', '1.0')).status, 404, 'nothing stored through the proxy')
    const rejected = proxy.logs.find((r) => r['event'] === 'push.rejected')
    t.ok(rejected.length >= 1, 'a decision record')
  })

  await t.test('the same list through the proxy to a mirror (platformMismatch: warn) is forwarded', async (t) => {
    const res = await putManifest(proxy.url, 'mirror/app', '1.0', swapped)
    t.equal(res.status, 201, await res.text())
    t.equal((await getManifest(registry.url, 'mirror/app', '1.0')).digest, swapped.digest)
  })

  await t.test('a truthful list passes', async (t) => {
    const res = await putManifest(proxy.url, 'team/app', '2.0', whole)
    t.equal(res.status, 201, await res.text())
  })

  await t.test('required platforms: a partial list is refused naming what is missing, a whole one passes', async (t) => {
    t.equal((await putManifest(registry.url, 'direct/app', 'partial', partial)).status, 201, 'the registry stores a partial list')
    const refused = await putManifest(proxy.url, 'release/app', '1.0', partial)
    t.equal(refused.status, 400)
    const errors = await errorsOf(refused)
    t.equal(errors[0]!.code, 'MANIFEST_INVALID')
    t.match(errors[0]!.message, 'the list has no linux/arm64 image')
    t.equal((await getManifest(registry.url, 'release/app', '1.0')).status, 404)
    const passed = await putManifest(proxy.url, 'release/app', '1.0', whole)
    t.equal(passed.status, 201, await passed.text())
    // Outside the rule nothing is required.
    t.equal((await putManifest(proxy.url, 'team/app', 'partial', partial)).status, 201)
  })
})

t.test('docker manifest annotate with the arch swapped: pushed straight, refused through the proxy with the fix', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const docker = new DockerCli()
  t.teardown(() => docker.cleanup())
  for (const [base, host, name] of [
    [registry.url, new URL(registry.url).host, 'direct/cli'],
    [proxy.url, proxy.host, 'team/cli'],
  ] as const) {
    const repo = `${host}/${name}`
    await pushImage(base, name, amd, '1.0-amd64')
    await pushImage(base, name, arm, '1.0-arm64')
    assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), 'manifest create')
    // The mistake: each image annotated with the other's architecture.
    assertOk(await docker.run(['manifest', 'annotate', '--arch', 'arm64', `${repo}:1.0`, `${repo}:1.0-amd64`]), 'annotate amd64 image as arm64')
    assertOk(await docker.run(['manifest', 'annotate', '--arch', 'amd64', `${repo}:1.0`, `${repo}:1.0-arm64`]), 'annotate arm64 image as amd64')
    const push = await docker.run(['manifest', 'push', '--insecure', `${repo}:1.0`])
    if (base === registry.url) {
      t.equal(push.code, 0, `stored straight: ${push.stderr}`)
    } else {
      t.not(push.code, 0, 'refused through the proxy')
      t.match(push.stderr, 'entry says linux/amd64, the image is linux/arm64')
      t.match(push.stderr, 'docker manifest annotate --os linux --arch arm64')
      t.equal((await getManifest(registry.url, 'team/cli', '1.0')).status, 404, 'nothing stored through the proxy')
    }
  }
})

