import t from 'tap'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { command, startRedis, startSentinel } from '../helpers/redis.js'
import { errorsOf, getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { waitFor } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Redis as operators run it for a ledger that must not go away: a master with a replica,
// watched by Redis Sentinel (ledger.redisSentinels). The master is killed mid-workload; the
// sentinel promotes the replica; the proxy follows it through ioredis' own Sentinel support,
// refusing (503) what it cannot check meanwhile, and no stale list is ever stored.

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }

t.test('Sentinel failover: the master killed mid-workload, the replica promoted, the proxy follows, no stale list stored', async (t) => {
  const master = await startRedis({ persist: true })
  t.teardown(() => master.stop())
  const replica = await startRedis({ persist: true, replicaOf: master.port })
  t.teardown(() => replica.stop())
  await waitFor(async () => (await command(replica.port, ['INFO', 'replication'])).includes('master_link_status:up'), 20_000, 'the replica in sync')
  const sentinel = await startSentinel(master.port)
  t.teardown(() => sentinel.stop())
  // The sentinel learns of the replica from the master's INFO.
  await waitFor(async () => (await command(sentinel.port, ['SENTINEL', 'replicas', 'mymaster'])).includes(String(replica.port)), 30_000, 'the sentinel knowing the replica')

  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { ledger: { store: 'redis', redisSentinels: [sentinel.address], redisSentinelMaster: 'mymaster', redisTimeoutMs: 300 } })

  const old = buildImage({ platform: amd64, seed: 'sentinel-old' })
  const arm = buildImage({ platform: arm64, seed: 'sentinel' })
  const rebuilt = buildImage({ platform: amd64, seed: 'sentinel-new' })
  const again = buildImage({ platform: amd64, seed: 'sentinel-newer' })
  await pushImage(proxy.url, 'team/app', old, '1.0-amd64')
  await pushImage(proxy.url, 'team/app', arm, '1.0-arm64')
  const first = buildIndex([old, arm]).manifest
  t.equal((await putManifest(proxy.url, 'team/app', '1.0', first)).status, 201, 'the first list, recorded through the master')
  await pushImage(proxy.url, 'team/app', rebuilt, '1.0-amd64')
  // Replication is asynchronous: the test starts from a replica that has the history.
  await waitFor(async () => (await command(replica.port, ['ZRANGE', 'manifest-guard:t:team/app:1.0-amd64', '0', '-1'])).includes(rebuilt.manifest.digest), 10_000, 'the history on the replica')
  const stale = buildIndex([arm, old]).manifest

  // Mid-workload: stale lists keep coming while the master dies and the replica takes over.
  let stop = false
  const answers: number[] = []
  const workload = (async () => {
    for (let i = 0; i < 400 && !stop; i++) {
      const res = await putManifest(proxy.url, 'team/app', '1.0', stale)
      await res.arrayBuffer()
      answers.push(res.status)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 500))
  await master.kill()
  // Another rebuild during the failover: kept until the promoted replica takes writes.
  await pushImage(proxy.url, 'team/app', again, '1.0-amd64')
  await waitFor(async () => (await sentinel.master()) === replica.port, 30_000, 'the sentinel promoting the replica')
  await waitFor(async () => proxy.app.guard.ledger.state.up && proxy.app.guard.ledger.state.pending === 0, 30_000, 'the proxy on the new master, its kept records written')
  // A few more answers from the new master before the workload stops.
  const settled = answers.length
  await waitFor(async () => answers.length >= settled + 3, 10_000, 'the workload going on')
  stop = true
  await workload

  t.ok(answers.length > 5, `${answers.length} stale list pushes during the failover`)
  t.same([...new Set(answers)].filter((s) => s !== 400 && s !== 503), [], `each refused: 400 (checked) or 503 (the ledger away), never stored (${answers.join(' ')})`)
  t.ok(answers.includes(503), 'the failover window answered 503')
  t.equal(answers.at(-1), 400, 'once the replica is master, refused as stale again')
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, first.digest, "the registry's 1.0 is still the first list")
  t.ok((await command(replica.port, ['ZRANGE', 'manifest-guard:t:team/app:1.0-amd64', '0', '-1'])).includes(again.manifest.digest), 'the rebuild pushed during the failover is on the promoted replica')
  const res = await putManifest(proxy.url, 'team/app', '1.0', stale)
  t.match((await errorsOf(res))[0]?.message, 'team/app:1.0-amd64 has been pushed again since', 'naming the rebuild')
})
