import t from 'tap'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { CLI, spawnProxy } from '../helpers/proxy.js'
import { startRedis } from '../helpers/redis.js'
import { startRegistry } from '../helpers/registry.js'
import { basic, pushChildren, pushImage, putManifest } from '../helpers/registry-http.js'
import { startTokenServer } from '../helpers/token-server.js'
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

t.test('a token server that cannot be reached is named as what failed, not as refused credentials', async (t) => {
  const tokens = await startTokenServer({ users: { ci: { password: 'ci-pw', grants: { 'team/**': ['pull', 'push'] } } } })
  const registry = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertPath: tokens.rootCertPath } })
  t.teardown(() => registry.stop())
  const working = await check(['--username', 'ci', '--password-stdin', `${registry.host}/team/app:1.0`], {}, 'ci-pw\n')
  t.equal(working.code, 3, `with the token server up: the tag does not exist (${working.stdout}${working.stderr})`)
  t.match(working.stdout + working.stderr, 'does not exist')
  await tokens.close()
  const down = await check(['--username', 'ci', '--password-stdin', `${registry.host}/team/app:1.0`], {}, 'ci-pw\n')
  t.equal(down.code, 3, 'not checked')
  t.match(down.stdout + down.stderr, `the token server ${new URL(tokens.realm).origin} could not be reached (ECONNREFUSED)`)
  t.notMatch(down.stdout + down.stderr, /refused the credentials/)
})

t.test("check reads the proxy's settings: its flags validated, its candidate repositories, its Redis ledger", async (t) => {
  const registry = await startRegistry()
  t.teardown(() => registry.stop())
  const redis = await startRedis()
  t.teardown(() => redis.stop())

  const bad = await check(['--timeout-ms', 'abc', `${registry.host}/team/app:1.0`])
  t.equal(bad.code, 2, 'a bad --timeout-ms is a usage error')
  t.match(bad.stderr, '--timeout-ms: expected an integer')
  t.notMatch(bad.stderr + bad.stdout, /NaN/)
  const badSetting = await check(['--validation-max-depth', '99', `${registry.host}/team/app:1.0`])
  t.equal(badSetting.code, 2)
  t.match(badSetting.stderr, 'validation.maxDepth (flag --validation-max-depth): expected an integer from 1 to 16')

  // A list whose child has since gone from team/app but is in builds/arm64: only the setting's
  // pattern finds it there.
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'check-settings' })
  await pushImage(registry.url, 'builds/arm64', arm)
  await pushImage(registry.url, 'team/app', arm)
  const list = buildIndex([arm])
  t.equal((await putManifest(registry.url, 'team/app', 'moved', list.manifest)).status, 201)
  t.equal((await fetch(`${registry.url}/v2/team/app/manifests/${arm.manifest.digest}`, { method: 'DELETE' })).status, 202)
  const defaults = await check([`${registry.host}/team/app:moved`])
  t.notMatch(defaults.stdout, 'builds/arm64', 'the default patterns do not look there')
  const found = await check(['--validation-candidate-repositories', 'builds/{arch}', `${registry.host}/team/app:moved`])
  t.match(found.stdout, 'is not in team/app but in builds/arm64', 'the configured candidate pattern is used')

  // A proxy with the Redis ledger saw the child pushed; it is deleted since: check says so.
  const proxy = await spawnProxy(['--upstream', registry.url, '--ledger-store', 'redis', '--ledger-redis-url', redis.url])
  t.teardown(() => proxy.stop())
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check-ledger' })
  await pushImage(proxy.url, 'team/app', amd, '2.0-amd64')
  const two = buildIndex([amd])
  t.equal((await putManifest(proxy.url, 'team/app', '2.0', two.manifest)).status, 201)
  const del = await fetch(`${registry.url}/v2/team/app/manifests/${amd.manifest.digest}`, { method: 'DELETE' })
  t.equal(del.status, 202, 'the child is deleted straight at the registry')
  const withLedger = await check([`${registry.host}/team/app:2.0`], { MANIFEST_GUARD_LEDGER_STORE: 'redis', MANIFEST_GUARD_LEDGER_REDIS_URL: redis.url })
  t.equal(withLedger.code, 1)
  t.match(withLedger.stdout, `was pushed to team/app as team/app:2.0-amd64`, 'named from the shared ledger')
  t.match(withLedger.stdout, 'has been deleted since')
  const without = await check([`${registry.host}/team/app:2.0`])
  t.match(without.stdout, 'has no record of it being pushed', 'without the ledger it cannot be named')
})
