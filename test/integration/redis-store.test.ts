import t from 'tap'
import { RedisLedgerStore } from '../../src/ledger/redis-store.js'
import { HISTORY_PER_KEY, type PushRecord } from '../../src/ledger/push-record.js'
import type { Digest } from '../../src/oci/digest.js'
import { startRedis } from '../helpers/redis.js'

// The Redis ledger against a real redis-server: order, bounds, repeats and TTLs.

const d = (n: number): Digest => `sha256:${n.toString(16).padStart(64, '0')}` as Digest
const rec = (repository: string, tag: string | undefined, digest: Digest, at: number): PushRecord => ({ repository, tag, digest, mediaType: undefined, at, identity: 'x', source: 'proxy' })

t.test('redis ledger store', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const store = new RedisLedgerStore({ url: redis.url, password: undefined, keyPrefix: 'test:', ttlSeconds: 120, maxTagsPerRepository: 3, commandTimeoutMs: 1000 })
  t.teardown(() => store.close())

  await store.record(rec('r', 't', d(1), 1000))
  await store.record(rec('r', 't', d(2), 2000))
  await store.record(rec('r', 't', d(2), 2500))
  t.same((await store.tagHistory('r', 't')).map((r) => [r.digest, r.at]), [[d(2), 2000], [d(1), 1000]], 'newest first; a repeat of the newest adds nothing')
  t.same((await store.pushesOf(d(1))).map((r) => r.repository), ['r'])

  for (let i = 0; i < HISTORY_PER_KEY + 5; i++) await store.record(rec('r', 'busy', d(100 + i), 10_000 + i))
  t.equal((await store.tagHistory('r', 'busy')).length, HISTORY_PER_KEY, 'history per tag bounded')

  for (const [i, tag] of ['a', 'b', 'c', 'd'].entries()) await store.record(rec('bounded', tag, d(500 + i), 20_000 + i))
  t.equal((await store.tagHistory('bounded', 'a')).length, 0, 'the oldest tag of a repository past the bound is dropped')
  t.equal((await store.tagHistory('bounded', 'd')).length, 1)
})
