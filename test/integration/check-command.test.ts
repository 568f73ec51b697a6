import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { type CheckIo, runCheck } from '../../src/check-command.js'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { CLI, spawnProxy } from '../helpers/proxy.js'
import { startRedis } from '../helpers/redis.js'
import { basic, deleteManifest, pushChildren, pushImage, putManifest } from '../helpers/registry-http.js'
import { startTokenServer } from '../helpers/token-server.js'
import { type RunResult, run } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// `manifest-guard check` against a real registry: exit 0 when sound, 1 when broken (a child's
// layer deleted after the list was pushed), the layer named; --json and --all-tags.

// Most cases call the command in-process (runCheck, what cli.ts calls); a few spawn the built
// CLI (checkSpawned) to show the process itself: its exit code, streams and standard input.
async function check(args: string[], env: Record<string, string> = {}, input?: string): Promise<RunResult> {
  let stdout = ''
  let stderr = ''
  const sink = (write: (s: string) => void) => new Writable({ write: (chunk: Buffer, _enc, done) => (write(chunk.toString()), done()) })
  const io: CheckIo = {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    env: { ...process.env, ...env },
    readStdin: () => {
      if (input === undefined) throw new Error('this case gives no standard input')
      return input
    },
  }
  const code = await runCheck(args, io)
  return { code, stdout, stderr }
}

const checkSpawned = (args: string[], env: Record<string, string> = {}, input?: string) =>
  run(process.execPath, [CLI, 'check', ...args], { env: { ...process.env, ...env }, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) })

t.test('check a list already in the registry', async (t) => {
  const registry = await registryFor(t)
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check', layerCount: 2 })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'check', layerCount: 2 })
  const list = buildIndex([amd, arm])
  await pushChildren(registry.url, 'team/app', list)
  await putManifest(registry.url, 'team/app', '1.0', list.manifest)
  await pushImage(registry.url, 'team/app', amd, '1.0-amd64')

  const sound = await checkSpawned([`${registry.host}/team/app:1.0`])
  t.equal(sound.code, 0, `sound list exits 0 (${sound.stderr})`)
  t.match(sound.stdout, `team/app:1.0  ${list.manifest.digest}  OCI image index: sound (2 children, 6 blobs checked)`)

  const gone = arm.layers[1]!.digest
  t.equal((await fetch(`${registry.url}/v2/team/app/blobs/${gone}`, { method: 'DELETE' })).status, 202)
  const broken = await checkSpawned([`${registry.host}/team/app:1.0`])
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

  const usage = await checkSpawned(['team/app:1.0'])
  t.equal(usage.code, 2)
  t.match(usage.stderr, 'name the registry too')
})

t.test('check with credentials', async (t) => {
  const registry = await registryFor(t, { users: { dana: 'dana-pw' } })
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check-auth' })
  await pushImage(registry.url, 'team/app', amd, undefined, basic('dana', 'dana-pw'))
  await putManifest(registry.url, 'team/app', '1.0', buildIndex([amd]).manifest, basic('dana', 'dana-pw'))
  const anonymous = await check([`${registry.host}/team/app:1.0`])
  t.equal(anonymous.code, 3)
  t.match(anonymous.stdout, 'refused the credentials')
  const withPassword = await checkSpawned(['--username', 'dana', '--password-stdin', `${registry.host}/team/app:1.0`], {}, 'dana-pw\n')
  t.equal(withPassword.code, 0, withPassword.stdout + withPassword.stderr)
  const fromEnv = await check(['--username', 'dana', `${registry.host}/team/app:1.0`], { MANIFEST_GUARD_CHECK_PASSWORD: 'dana-pw' })
  t.equal(fromEnv.code, 0)
})

t.test('a token server that cannot be reached is named as what failed, not as refused credentials', async (t) => {
  const tokens = await startTokenServer({ users: { ci: { password: 'ci-pw', grants: { 'team/**': ['pull', 'push'] } } } })
  const registry = await registryFor(t, { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertPath: tokens.rootCertPath } })
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
  const registry = await registryFor(t)
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

t.test('a list with only warnings is sound, with the warnings shown (it was NOT CHECKED, exit 3)', async (t) => {
  const registry = await registryFor(t)
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check-warned' })
  await pushImage(registry.url, 'team/app', amd)
  t.equal((await putManifest(registry.url, 'team/app', '1.0', buildIndex([amd, amd]).manifest)).status, 201, 'the registry stores a list naming one child twice')
  const r = await check([`${registry.host}/team/app:1.0`])
  t.equal(r.code, 0, `exit 0 (${r.stdout}${r.stderr})`)
  t.match(r.stdout, 'OCI image index: sound, with 1 warning')
  t.match(r.stdout, `names ${amd.manifest.digest} (linux/amd64) twice`)
  const json = JSON.parse((await check(['--json', `${registry.host}/team/app:1.0`])).stdout) as unknown
  t.match(json, { status: 'warned', problems: [{ cause: 'duplicate-entry' }] })
})

t.test('a stale child that still exists: named from the Redis ledger of a config file, judged by validation.staleChild', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { ledger: { store: 'redis', redisUrl: redis.url } })
  const old = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check-stale-old' })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'check-stale' })
  const rebuilt = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check-stale-new' })
  await pushImage(proxy.url, 'team/app', old, '1.0-amd64')
  await pushImage(proxy.url, 'team/app', arm, '1.0-arm64')
  t.equal((await putManifest(proxy.url, 'team/app', '1.0', buildIndex([old, arm]).manifest)).status, 201)
  await pushImage(proxy.url, 'team/app', rebuilt, '1.0-amd64')
  const target = `${registry.host}/team/app:1.0`
  const dir = mkdtempSync(join(tmpdir(), 'mg-check-'))
  const file = join(dir, 'guard.yaml')
  writeFileSync(file, `ledger:\n  store: redis\n  redisUrl: ${redis.url}\n`)

  const blind = await check([target])
  t.equal(blind.code, 0, 'without the ledger, a stale child that still exists looks sound')
  const stale = await check(['--config', file, target])
  t.equal(stale.code, 1, `with the ledger of the config file: broken (${stale.stderr})`)
  t.match(stale.stdout, `stale child ${old.manifest.digest} (linux/amd64) is an old build: team/app:1.0-amd64 has been pushed again since`)
  const warned = await check([target], { MANIFEST_GUARD_CONFIG: file, MANIFEST_GUARD_VALIDATION_STALE_CHILD: 'warn' })
  t.equal(warned.code, 0, 'validation.staleChild: warn forwards such a push, so the check warns')
  t.match(warned.stdout, 'sound, with 1 warning')

  t.equal(await deleteManifest(registry.url, 'team/app', old.manifest.digest), 202)
  const unknown = await check([target])
  t.equal(unknown.code, 1)
  t.match(unknown.stdout, 'no record of it being pushed')
  t.match(unknown.stderr, 'note: no push ledger (ledger.store is memory)', 'and it says why it cannot tell more')
})

t.test('a bearer token comes from standard input or the environment, never a flag', async (t) => {
  const tokens = await startTokenServer({ users: { ci: { password: 'ci-pw', grants: { 'team/**': ['pull', 'push'] } } } })
  t.teardown(() => tokens.close())
  const registry = await registryFor(t, { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertPath: tokens.rootCertPath } })
  const scope = encodeURIComponent('repository:team/app:pull,push')
  const granted = await fetch(`${tokens.realm}?service=${tokens.service}&scope=${scope}`, { headers: { authorization: basic('ci', 'ci-pw') } })
  const token = ((await granted.json()) as { token: string }).token
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'check-token' })
  await pushImage(registry.url, 'team/app', amd, undefined, `Bearer ${token}`)
  await putManifest(registry.url, 'team/app', '1.0', buildIndex([amd]).manifest, `Bearer ${token}`)
  const target = `${registry.host}/team/app:1.0`

  const flag = await check(['--token', token, target])
  t.equal(flag.code, 2)
  t.equal(flag.stderr, 'manifest-guard check: --token: a secret is never taken as a flag (every user of the machine can read flags in ps); use --token-stdin or set MANIFEST_GUARD_CHECK_TOKEN\n')
  const stdin = await check(['--token-stdin', target], {}, `${token}\n`)
  t.equal(stdin.code, 0, `--token-stdin: sound (${stdin.stdout}${stdin.stderr})`)
  const env = await check([target], { MANIFEST_GUARD_CHECK_TOKEN: token })
  t.equal(env.code, 0, 'MANIFEST_GUARD_CHECK_TOKEN: sound')
})
