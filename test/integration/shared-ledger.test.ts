import t from 'tap'
import { request } from 'undici'
import { assertOk, DockerCli, skopeoPush } from '../helpers/clients.js'
import { buildImage, buildIndex, ociLayoutRef } from '../helpers/oci-builder.js'
import { spawnProxy } from '../helpers/proxy.js'
import { startRedis } from '../helpers/redis.js'
import { errorsOf, pushImage, putManifest } from '../helpers/registry-http.js'
import { freePort } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Several replicas behind one Service share the push ledger in Redis: the children go
// through one replica, the stale list through another, and the diagnosis still knows.

t.test('two proxy processes sharing one redis-server', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const registry = await registryFor(t)
  const args = ['--upstream', registry.url, '--ledger-store', 'redis', '--ledger-redis-url', redis.url]
  const a = await spawnProxy(args)
  t.teardown(() => a.stop())
  const b = await spawnProxy(args)
  t.teardown(() => b.stop())
  const docker = new DockerCli()
  t.teardown(() => docker.cleanup())

  const old = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'replica-old' })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'replica' })
  const rebuilt = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'replica-new' })
  assertOk(await skopeoPush(ociLayoutRef(old), `${a.host}/team/app:1.0-amd64`), 'push amd64 through replica A')
  assertOk(await skopeoPush(ociLayoutRef(arm), `${a.host}/team/app:1.0-arm64`), 'push arm64 through replica A')
  assertOk(await docker.run(['manifest', 'create', '--insecure', `${b.host}/team/app:1.0`, `${b.host}/team/app:1.0-amd64`, `${b.host}/team/app:1.0-arm64`]), 'create')
  assertOk(await skopeoPush(ociLayoutRef(rebuilt), `${a.host}/team/app:1.0-amd64`), 'push the rebuild through replica A')
  await registry.garbageCollect({ deleteUntagged: true })

  const push = await docker.run(['manifest', 'push', '--insecure', `${b.host}/team/app:1.0`])
  t.not(push.code, 0, 'replica B refuses the stale list')
  t.match(push.stderr, `stale child ${old.manifest.digest} (linux/amd64): team/app:1.0-amd64 was this digest`, 'naming the stale tag it learned from Redis')
  t.match(push.stderr, rebuilt.manifest.digest.slice(0, 19))
})

t.test('with Redis down, image pushes still work, list pushes fail closed, and the failure is logged and counted', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { ledger: { store: 'redis', redisUrl: `redis://127.0.0.1:${await freePort()}/0`, redisTimeoutMs: 200 } })
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'no-redis' })
  const gone = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'no-redis' })
  await pushImage(proxy.url, 'team/app', amd, '1.0-amd64')
  const started = performance.now()
  const sound = await putManifest(proxy.url, 'team/app', 'good', buildIndex([amd]).manifest)
  t.equal(sound.status, 503, 'a sound list cannot be checked for stale children: 503')
  t.equal(sound.headers.get('retry-after'), '5')
  const bad = await putManifest(proxy.url, 'team/app', 'bad', buildIndex([amd, gone]).manifest)
  t.equal(bad.status, 400, 'a broken one is still refused, from what the registry says')
  t.match((await errorsOf(bad))[0]?.message, `child ${gone.manifest.digest} (linux/arm64) is not in team/app`)
  // Redis down must cost each push at most redisTimeoutMs (200 ms); the bound catches a push
  // stuck on it, with room for a loaded machine.
  t.ok(performance.now() - started < 15_000, 'without waiting on Redis')
  const record = proxy.logs.find((r) => r['event'] === 'push.rejected')[0]
  t.type(record?.['ledgerError'], 'string', 'the decision record says the ledger was unavailable')
  t.ok(proxy.logs.find((r) => r['event'] === 'ledger.kept').length >= 1, 'records that could not be written are logged as kept')
  const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text()
  t.match(metrics, /manifest_guard_ledger_errors_total\{operation="record"\} [1-9]/)
  t.match(metrics, /manifest_guard_ledger_up 0/)
})
