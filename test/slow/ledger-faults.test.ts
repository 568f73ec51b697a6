import { mkdtempSync, readFileSync, existsSync } from 'node:fs'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { RedisLedgerStore } from '../../src/ledger/redis-store.js'
import { buildImage, buildIndex, type BuiltImage } from '../helpers/oci-builder.js'
import { merge, type RunningProxy } from '../helpers/proxy.js'
import { startRedis } from '../helpers/redis.js'
import { errorsOf, getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { freePort, waitFor } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The shared ledger under faults, side by side with a real registry and a real redis-server:
// hung (SIGSTOP), stopped and started again, slow to answer one replica. A list push whose
// stale check cannot run is refused with 503 (or forwarded with a warning when
// validation.onLedgerFailure says so), never silently accepted; pushes made meanwhile are
// kept and written when Redis answers again, so the stale rule knows them afterwards.

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }

async function metricsOf(proxy: RunningProxy): Promise<string> {
  return (await request(`${proxy.adminUrl}/metrics`)).body.text()
}

async function ledgerBack(proxy: RunningProxy, what: string): Promise<void> {
  await waitFor(async () => {
    const state = proxy.app.guard.ledger.state
    return state.up && state.pending === 0
  }, 20_000, `${what}: the ledger answering again, its kept records written`)
}

/** The amd64 build of 1.0, then the arm64 one, then a sound list of both: the starting point. */
async function release(proxy: RunningProxy, seed: string): Promise<{ old: BuiltImage; arm: BuiltImage; rebuilt: BuiltImage; first: string }> {
  const old = buildImage({ platform: amd64, seed: `${seed}-old` })
  const arm = buildImage({ platform: arm64, seed })
  const rebuilt = buildImage({ platform: amd64, seed: `${seed}-new` })
  await pushImage(proxy.url, 'team/app', old, '1.0-amd64')
  await pushImage(proxy.url, 'team/app', arm, '1.0-arm64')
  const first = buildIndex([old, arm])
  const res = await putManifest(proxy.url, 'team/app', '1.0', first.manifest)
  if (res.status !== 201) throw new Error(`the first list answered ${res.status}: ${await res.text()}`)
  return { old, arm, rebuilt, first: first.manifest.digest }
}

t.test('Redis hung (SIGSTOP): a stale list is refused with 503, a rebuild pushed meanwhile is known after recovery', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const registry = await registryFor(t)
  const audit = join(mkdtempSync(join(tmpdir(), 'mg-ledger-audit-')), 'audit.jsonl')
  const values = { ledger: { store: 'redis', redisUrl: redis.url, redisTimeoutMs: 300 } }
  const proxy = await proxyFor(t, registry.url, merge(values, { audit: { file: audit } }))
  // A second replica on the same Redis, set to forward with a warning instead.
  const lenient = await proxyFor(t, registry.url, merge(values, { validation: { onLedgerFailure: 'forward' } }))

  const { old, arm, rebuilt, first } = await release(proxy, 'hang')
  // Another list naming the old amd64 build: stale once 1.0-amd64 is rebuilt.
  const stale = buildIndex([arm, old]).manifest

  redis.pause()
  t.teardown(() => redis.resume())
  const started = performance.now()
  await pushImage(proxy.url, 'team/app', rebuilt, '1.0-amd64')
  t.ok(performance.now() - started < 5_000, 'the rebuild is pushed while Redis hangs, each answer waiting at most ledger.redisTimeoutMs')
  t.equal(proxy.logs.find((r) => r['event'] === 'ledger.kept' && r['digest'] === rebuilt.manifest.digest).length, 1, 'its record is kept for later')

  const refused = await putManifest(proxy.url, 'team/app', '1.0', stale)
  t.equal(refused.status, 503, 'the stale list is refused: its stale check cannot run')
  t.equal(refused.headers.get('retry-after'), '5', 'with Retry-After')
  const errors = await errorsOf(refused)
  t.equal(errors[0]?.code, 'UNAVAILABLE')
  t.match(errors[0]?.message, /could not check this list for stale children: the push ledger is unavailable/, 'naming the cause')
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, first, 'not stored: 1.0 is still the first list')
  // Side by side: the registry itself stores it.
  t.equal((await putManifest(registry.url, 'team/app', 'direct', stale)).status, 201, 'straight to the registry, the same list is stored')

  const record = proxy.logs.find((r) => r['event'] === 'push.unverified')[0]
  t.match(record?.['problems'], [{ cause: 'ledger-unavailable' }], 'the decision record says the stale check could not run')
  t.type(record?.['ledgerError'], 'string')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.accepted' && r['reference'] === '1.0' && r['digest'] !== first).length, 0, 'never a silent push.accepted')
  const metrics = await metricsOf(proxy)
  t.match(metrics, /manifest_guard_ledger_up 0/, 'ledger up gauge: 0')
  t.match(metrics, /manifest_guard_list_push_problems_total\{result="unverified",cause="ledger-unavailable"\} 1/, 'counted by cause')
  t.match(metrics, /manifest_guard_ledger_pending_records [1-9]/, 'records kept')
  await waitFor(async () => existsSync(audit) && readFileSync(audit, 'utf8').includes('ledger-unavailable'), 5_000, 'the audit record')
  const audited = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.ok(audited.some((a) => a['event'] === 'push.unverified'), 'audited although audit.include (rejected, warned, repaired) leaves unverified out')

  redis.resume()
  await ledgerBack(proxy, 'proxy')
  await ledgerBack(lenient, 'second replica')
  t.match(await metricsOf(proxy), /manifest_guard_ledger_up 1/, 'ledger up gauge: 1 again')
  const after = await putManifest(proxy.url, 'team/app', '1.0', stale)
  t.equal(after.status, 400, 'after recovery the stale list is refused as stale')
  t.match((await errorsOf(after))[0]?.message, `stale child ${old.manifest.digest} (linux/amd64) is an old build: team/app:1.0-amd64 has been pushed again since`)
  // The second replica never saw the rebuild: it learns it from Redis, where it was written.
  const elsewhere = await putManifest(lenient.url, 'team/app', '1.0', stale)
  t.equal(elsewhere.status, 400, 'and refused by the replica that never saw the rebuild: it is in Redis')
  const store = new RedisLedgerStore({ url: redis.url, password: undefined, keyPrefix: 'manifest-guard:', ttlSeconds: 3600, maxTagsPerRepository: 100, commandTimeoutMs: 2_000 })
  t.teardown(() => store.close())
  t.equal((await store.tagHistory('team/app', '1.0-amd64'))[0]?.digest, rebuilt.manifest.digest, 'Redis holds the rebuild as the newest push of 1.0-amd64')
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, first, '1.0 is still the first list')

  t.test('validation.onLedgerFailure: forward stores it with a warning, never a silent accept', async (t) => {
    redis.pause()
    const warned = await putManifest(lenient.url, 'team/app', '1.0', stale)
    redis.resume()
    t.equal(warned.status, 201, 'forwarded')
    t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, buildIndex([arm, old]).manifest.digest, 'the registry holds it')
    const w = lenient.logs.find((r) => r['event'] === 'push.warned')[0]
    t.match(w?.['problems'], [{ cause: 'ledger-unavailable' }], 'push.warned, saying the stale check could not run')
    t.equal(lenient.logs.find((r) => r['event'] === 'push.accepted' && r['digest'] === buildIndex([arm, old]).manifest.digest).length, 0, 'not push.accepted')
    t.match(await metricsOf(lenient), /manifest_guard_list_push_problems_total\{result="warned",cause="ledger-unavailable"\} 1/)
    await ledgerBack(lenient, 'second replica')
  })
})

t.test('Redis stopped, then started again (persisted): the same, and the ledger survives the restart', async (t) => {
  const redis = await startRedis({ persist: true })
  t.teardown(() => redis.stop())
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { ledger: { store: 'redis', redisUrl: redis.url, redisTimeoutMs: 300 } })
  const { old, arm, rebuilt, first } = await release(proxy, 'stop')
  const stale = buildIndex([arm, old]).manifest

  await redis.stop()
  await pushImage(proxy.url, 'team/app', rebuilt, '1.0-amd64')
  const started = performance.now()
  const refused = await putManifest(proxy.url, 'team/app', '1.0', stale)
  t.equal(refused.status, 503, 'refused while Redis is stopped')
  t.ok(performance.now() - started < 5_000, 'promptly')
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, first, 'not stored')

  await redis.start()
  await ledgerBack(proxy, 'after the restart')
  const after = await putManifest(proxy.url, 'team/app', '1.0', stale)
  t.equal(after.status, 400, 'refused as stale after the restart: the old records persisted, the rebuild was written when Redis came back')
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, first, 'still not stored')
})

/** A TCP relay that holds every chunk `delayMs` each way: a Redis far away, or loaded. */
async function slowRelay(target: number, delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1')
    sockets.add(client).add(upstream)
    const forward = (from: Socket, to: Socket) => from.on('data', (d: Buffer) => setTimeout(() => to.destroyed || to.write(d), delayMs))
    forward(client, upstream)
    forward(upstream, client)
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

t.test('cross-replica race: a replica answers 201 only once its record is in Redis', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const registry = await registryFor(t)
  // Replica A reaches Redis through a slow link: every Redis answer takes 80 ms more each way.
  const relay = await slowRelay(redis.port, 80)
  t.teardown(() => relay.close())
  const a = await proxyFor(t, registry.url, { ledger: { store: 'redis', redisUrl: `redis://127.0.0.1:${relay.port}/0`, redisTimeoutMs: 5_000 } })
  const b = await proxyFor(t, registry.url, { ledger: { store: 'redis', redisUrl: redis.url, redisTimeoutMs: 5_000 } })

  const arm = buildImage({ platform: arm64, seed: 'race' })
  await pushImage(b.url, 'team/app', arm, '1.0-arm64')
  let current = buildImage({ platform: amd64, seed: 'race-0' })
  await pushImage(b.url, 'team/app', current, '1.0-amd64')
  for (let round = 1; round <= 3; round++) {
    const list = buildIndex([current, arm]).manifest
    t.equal((await putManifest(b.url, 'team/app', '1.0', list)).status, 201, `round ${round}: the sound list, through B`)
    const rebuilt = buildImage({ platform: amd64, seed: `race-${round}` })
    // The rebuild through A; the moment A answers, the old list again through B.
    await pushImage(a.url, 'team/app', rebuilt, '1.0-amd64')
    const res = await putManifest(b.url, 'team/app', '1.0', list)
    t.equal(res.status, 400, `round ${round}: B refuses the stale list right after A's 201`)
    t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, list.digest, `round ${round}: the registry's 1.0 is the sound list`)
    current = rebuilt
  }
})

t.test('registry notifications are at least once: an event not recorded is answered 503, sent again, then known', async (t) => {
  const TOKEN = 'faults-events-token'
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const adminPort = await freePort()
  const registry = await registryFor(t, { notify: { url: `http://127.0.0.1:${adminPort}/_guard/v1/events`, token: TOKEN } })
  const proxy = await proxyFor(t, registry.url, { admin: { listen: `127.0.0.1:${adminPort}` }, registryEvents: { token: TOKEN }, ledger: { store: 'redis', redisUrl: redis.url, redisTimeoutMs: 300 } })
  const ledger = proxy.app.guard.ledger

  const old = buildImage({ platform: amd64, seed: 'events-fault-old' })
  const arm = buildImage({ platform: arm64, seed: 'events-fault' })
  const rebuilt = buildImage({ platform: amd64, seed: 'events-fault-new' })
  // Internal CI pushes straight to the registry.
  await pushImage(registry.url, 'team/app', old, '1.0-amd64')
  await pushImage(registry.url, 'team/app', arm, '1.0-arm64')
  await waitFor(async () => (await ledger.tagHistory('team/app', '1.0-amd64')).length === 1 && (await ledger.tagHistory('team/app', '1.0-arm64')).length === 1, 15_000, 'the first events')

  redis.pause()
  t.teardown(() => redis.resume())
  await pushImage(registry.url, 'team/app', rebuilt, '1.0-amd64')
  await waitFor(async () => /manifest_guard_registry_events_total\{outcome="failed"\} [1-9]/.test(await metricsOf(proxy)), 15_000, 'the event for the rebuild, refused')
  t.ok(proxy.logs.find((r) => r['event'] === 'registry-events.failed').length >= 1, 'logged: answered 503 so the registry sends it again')
  redis.resume()
  await ledgerBack(proxy, 'proxy')
  await waitFor(async () => (await ledger.tagHistory('team/app', '1.0-amd64'))[0]?.digest === rebuilt.manifest.digest, 30_000, 'the event sent again by the registry, then recorded')
  t.pass('the registry sent the event again and it was recorded')

  const res = await putManifest(proxy.url, 'team/app', '1.0', buildIndex([old, arm]).manifest)
  t.equal(res.status, 400, 'the stale list is refused')
  t.match((await errorsOf(res))[0]?.message, `stale child ${old.manifest.digest} (linux/amd64) is an old build: team/app:1.0-amd64 has been pushed again since`)
  const history = await ledger.tagHistory('team/app', '1.0-amd64')
  t.equal(history.filter((r) => r.digest === rebuilt.manifest.digest).length, 1, 'an event delivered more than once is recorded once')
})

t.test('memory ledger flood: 5 000 pushes into another repository leave team/app stale protection intact', async (t) => {
  const registry = await registryFor(t)
  // A small bound, so 5 000 pushes are several times what it holds.
  const proxy = await proxyFor(t, registry.url, { ledger: { store: 'memory', maxRecords: 1_000 } })
  const { old, arm, first } = await release(proxy, 'flood')
  await pushImage(proxy.url, 'team/app', buildImage({ platform: amd64, seed: 'flood-new' }), '1.0-amd64')
  const stale = buildIndex([arm, old]).manifest
  t.equal((await putManifest(proxy.url, 'team/app', '1.0', stale)).status, 400, 'before the flood the stale list is refused')

  // Anyone who can push anywhere: one tiny manifest under 5 000 tags of mallory/junk.
  const junk = buildImage({ platform: amd64, seed: 'junk' })
  await pushImage(proxy.url, 'mallory/junk', junk)
  let next = 0
  let created = 0
  const worker = async (): Promise<void> => {
    while (next < 5_000) {
      const i = next++
      const res = await putManifest(proxy.url, 'mallory/junk', `junk-${i}`, junk.manifest)
      await res.arrayBuffer()
      if (res.status === 201) created++
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  t.equal(created, 5_000, '5 000 pushes into mallory/junk')

  const res = await putManifest(proxy.url, 'team/app', '1.0', stale)
  t.equal(res.status, 400, 'after the flood the stale list is still refused')
  t.match((await errorsOf(res))[0]?.message, 'team/app:1.0-amd64 has been pushed again since')
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, first, 'not stored')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.accepted' && r['digest'] === stale.digest).length, 0)
})
