import t from 'tap'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { CLI } from '../helpers/proxy.js'
import { startRegistry } from '../helpers/registry.js'
import { basic, pushChildren, pushImage, putManifest } from '../helpers/registry-http.js'
import { run } from '../helpers/tools.js'

// `manifest-guard check` against a real registry: exit 0 when sound, 1 when broken (a child's
// layer deleted after the list was pushed), the layer named; --json and --all-tags.

const check = (args: string[], env: Record<string, string> = {}, input?: string) =>
  run(process.execPath, [CLI, 'check', ...args], { env: { ...process.env, ...env }, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) })

t.test('check a list already in the registry', async (t) => {
  const registry = await startRegistry()
  t.teardown(() => registry.stop())
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check', layerCount: 2 })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'check', layerCount: 2 })
  const list = buildIndex([amd, arm])
  await pushChildren(registry.url, 'team/app', list)
  await putManifest(registry.url, 'team/app', '1.0', list.manifest)
  await pushImage(registry.url, 'team/app', amd, '1.0-amd64')

  const sound = await check([`${registry.host}/team/app:1.0`])
  t.equal(sound.code, 0, `sound list exits 0 (${sound.stderr})`)
  t.match(sound.stdout, `team/app:1.0  ${list.manifest.digest}  OCI image index: sound (2 children, 6 blobs checked)`)

  const gone = arm.layers[1]!.digest
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${gone}`, { method: 'DELETE' })).status, 202)
  const broken = await check([`${registry.host}/team/app:1.0`])
  t.equal(broken.code, 1, 'broken list exits 1')
  t.match(broken.stdout, 'OCI image index: BROKEN, 1 problem')
  t.match(broken.stdout, `manifest blob unknown: layer ${gone} (layer 2) of the linux/arm64 child`)

  const json = await check(['--json', `${registry.host}/team/app:1.0`])
  t.equal(json.code, 1)
  t.match(JSON.parse(json.stdout), { status: 'broken', digest: list.manifest.digest, problems: [{ cause: 'blob-missing', digest: gone }] })

  const sweep = await check(['--all-tags', `${registry.host}/team/app`])
  t.equal(sweep.code, 1, 'a sweep with a broken tag exits 1')
  t.match(sweep.stdout, 'team/app:1.0-amd64')
  t.match(sweep.stdout, '2 checked: 1 sound, 1 broken, 0 not checked')

  const missing = await check([`${registry.host}/team/app:nope`])
  t.equal(missing.code, 3, 'a tag that does not exist: could not check')
  t.match(missing.stdout, 'NOT CHECKED: team/app:nope does not exist')

  const usage = await check(['team/app:1.0'])
  t.equal(usage.code, 2)
  t.match(usage.stderr, 'name the registry too')
})

t.test('check with credentials', async (t) => {
  const registry = await startRegistry({ users: { dana: 'dana-pw' } })
  t.teardown(() => registry.stop())
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check-auth' })
  await pushImage(registry.url, 'team/app', amd, undefined, basic('dana', 'dana-pw'))
  await putManifest(registry.url, 'team/app', '1.0', buildIndex([amd]).manifest, basic('dana', 'dana-pw'))
  const anonymous = await check([`${registry.host}/team/app:1.0`])
  t.equal(anonymous.code, 3)
  t.match(anonymous.stdout, 'refused the credentials')
  const withPassword = await check(['--username', 'dana', '--password-stdin', `${registry.host}/team/app:1.0`], {}, 'dana-pw\n')
  t.equal(withPassword.code, 0, withPassword.stdout + withPassword.stderr)
  const fromEnv = await check(['--username', 'dana', `${registry.host}/team/app:1.0`], { MANIFEST_GUARD_CHECK_PASSWORD: 'dana-pw' })
  t.equal(fromEnv.code, 0)
})
