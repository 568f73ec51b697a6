import t from 'tap'
import { identityLabel, identityOf } from '../../src/proxy/identity.js'
import { BodyCopy, readRequestBody } from '../../src/proxy/request-body.js'
import { MemoryLedgerStore } from '../../src/ledger/memory-store.js'
import { HISTORY_PER_KEY, type PushRecord } from '../../src/ledger/push-record.js'
import { GuardedLedger, LedgerGapError, LedgerUnavailableError } from '../../src/ledger/guarded-ledger.js'
import { waitFor } from '../helpers/tools.js'
import type { Digest } from '../../src/oci/digest.js'
import { parseManifest } from '../../src/oci/manifest.js'
import { ManifestCache } from '../../src/upstream/manifest-cache.js'
import { limiter } from '../../src/validate/limiter.js'
import { Readable } from 'node:stream'

const d = (n: number): Digest => `sha256:${n.toString(16).padStart(64, '0')}` as Digest

t.test('manifest cache: bytes by their own digest, bounded in bytes', async (t) => {
  const cache = new ManifestCache(1 << 20)
  const raw = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}')
  const m = parseManifest(raw, undefined)
  if ('problem' in m) return t.fail()
  cache.remember(m.digest, raw)
  t.same(cache.body(m.digest), raw, 'bytes kept by digest, and only bytes: what they are is read from them at each use')
  t.equal(cache.body(d(9)), undefined)
  cache.remember(d(7), raw)
  t.equal(cache.body(d(7)), undefined, 'bytes that do not hash to the digest are not kept under it')
  const small = new ManifestCache(10)
  small.remember(m.digest, raw)
  t.equal(small.body(m.digest), undefined, 'a body larger than the whole cache is not kept')
  const off = new ManifestCache(0)
  off.remember(m.digest, raw)
  t.equal(off.body(m.digest), undefined, '0 disables the cache')
})

t.test('memory ledger', async (t) => {
  const ledger = new MemoryLedgerStore(10_000)
  const rec = (tag: string | undefined, digest: Digest, at: number, repository = 'r') => ({ repository, tag, digest, mediaType: undefined, at, identity: undefined, source: 'proxy' as const })
  await ledger.record(rec('t', d(1), 1))
  await ledger.record(rec('t', d(2), 3))
  await ledger.record(rec(undefined, d(1), 2, 'other'))
  t.same((await ledger.tagHistory('r', 't')).map((r) => r.digest), [d(2), d(1)], 'newest first')
  t.same((await ledger.pushesOf(d(1))).map((r) => r.repository), ['other', 'r'])
  for (let i = 0; i < HISTORY_PER_KEY + 10; i++) await ledger.record(rec('busy', d(100 + i), 100 + i))
  t.equal((await ledger.tagHistory('r', 'busy')).length, HISTORY_PER_KEY, 'history per tag is bounded')

  const small = new MemoryLedgerStore(5)
  for (let i = 0; i < 20; i++) await small.record(rec(`t${i}`, d(i), i))
  t.equal((await small.pushesOf(d(0))).length, 0, 'the oldest records are dropped')
  t.equal((await small.pushesOf(d(19))).length, 1)
})

t.test('memory ledger is fair: one repository flooding evicts its own history, not another\'s', async (t) => {
  const ledger = new MemoryLedgerStore(1_000)
  const rec = (repository: string, tag: string | undefined, digest: Digest, at: number) => ({ repository, tag, digest, mediaType: undefined, at, identity: undefined, source: 'proxy' as const })
  for (let i = 0; i < 20; i++) await ledger.record(rec('team/app', `1.${i}-amd64`, d(i), i))
  // One tiny manifest under thousands of tags, then thousands of manifests.
  for (let i = 0; i < 5_000; i++) await ledger.record(rec('mallory/junk', `junk-${i}`, d(50_000), 1_000 + i))
  t.equal((await ledger.pushesOf(d(50_000))).length, 32, 'a digest pushed under many tags keeps a bounded history, in its own repository')
  for (let i = 0; i < 5_000; i++) await ledger.record(rec('mallory/junk', `other-${i}`, d(100_000 + i), 10_000 + i))
  for (let i = 0; i < 20; i++) t.equal((await ledger.tagHistory('team/app', `1.${i}-amd64`))[0]?.digest, d(i), `team/app:1.${i}-amd64 kept`)
  t.equal(ledger.sizeOf('team/app'), 20)
  t.equal(ledger.sizeOf('mallory/junk'), 980, 'the flood holds the rest of the bound')
  t.equal((await ledger.tagHistory('mallory/junk', 'other-0')).length, 0, "the flood's own oldest records went")
  t.equal((await ledger.tagHistory('mallory/junk', 'other-4999')).length, 1)
  t.equal((await ledger.pushesOf(d(3)))[0]?.repository, 'team/app')
  // Two large repositories: the larger gives way, down to the other's size.
  const two = new MemoryLedgerStore(100)
  for (let i = 0; i < 60; i++) await two.record(rec('a', `t${i}`, d(i), i))
  for (let i = 0; i < 100; i++) await two.record(rec('b', `t${i}`, d(1000 + i), 100 + i))
  t.equal(two.sizeOf('a') + two.sizeOf('b'), 100)
  t.ok(two.sizeOf('a') >= 50, `a keeps its fair share (${two.sizeOf('a')})`)
})

/** A store that fails while `down` is set, the way Redis does when it is away. */
class FlakyStore extends MemoryLedgerStore {
  down = false
  override async record(record: PushRecord): Promise<void> {
    if (this.down) throw new Error('connection refused')
    return super.record(record)
  }
  override async tagHistory(repository: string, tag: string): Promise<readonly PushRecord[]> {
    if (this.down) throw new Error('connection refused')
    return super.tagHistory(repository, tag)
  }
  override async ping(): Promise<void> {
    if (this.down) throw new Error('connection refused')
  }
}

t.test('guarded ledger: writes kept while the store is down, written after; gaps make a tag unknown', async (t) => {
  const store = new FlakyStore(1_000)
  const lost: PushRecord[] = []
  const states: boolean[] = []
  const ledger = new GuardedLedger(store, { timeoutMs: 200, maxPending: 2, probeUpMs: 20, probeDownMs: 20, onLost: (r) => lost.push(r), onState: (s) => states.push(s.up) })
  t.teardown(() => ledger.close())
  const rec = (tag: string, digest: Digest, at: number): PushRecord => ({ repository: 'r', tag, digest, mediaType: undefined, at, identity: undefined, source: 'proxy' })
  t.equal(await ledger.write(rec('a', d(1), 1)), 'written')

  store.down = true
  t.equal(await ledger.write(rec('a', d(2), 2)), 'kept', 'the store failing: the record is kept')
  await t.rejects(ledger.tagHistory('r', 'a'), LedgerUnavailableError, 'reads fail while the store is down: the stale check cannot run')
  await t.rejects(ledger.recordNow(rec('x', d(9), 9)), LedgerUnavailableError, 'recordNow throws (the events endpoint answers 503)')
  t.equal(ledger.state.up, false)
  t.equal(await ledger.write(rec('b', d(3), 3)), 'kept')
  t.equal(await ledger.write(rec('c', d(4), 4)), 'kept', 'past maxPending the oldest gives way')
  t.same(lost.map((r) => r.digest), [d(2)], 'the dropped record is reported')
  t.equal(ledger.state.pending, 3, 'two records and one gap marker kept')

  store.down = false
  await waitFor(async () => ledger.state.up && ledger.state.pending === 0, 5_000, 'the probe finding the store back')
  t.same((await ledger.tagHistory('r', 'b')).map((r) => r.digest), [d(3)], 'kept records are written once the store answers')
  await t.rejects(ledger.tagHistory('r', 'a'), LedgerGapError, 'a tag whose record was lost is unknown, not clean')
  await ledger.write(rec('a', d(5), Date.now() + 1))
  t.same((await ledger.tagHistory('r', 'a')).map((r) => r.digest), [d(5), d(1)], 'a newer push closes the gap; the marker itself is never shown')
  t.same(states.slice(-1), [true])
})

t.test('identity never keeps a credential, and is claimed until the registry accepted it', async (t) => {
  const header = `Basic ${Buffer.from('alice:secret').toString('base64')}`
  t.same(identityOf(header, false), { kind: 'basic', user: 'alice', claimed: true })
  t.equal(identityLabel(identityOf(header, false)), 'alice (claimed)')
  const basic = identityOf(header, true)
  t.same(basic, { kind: 'basic', user: 'alice' })
  t.equal(identityLabel(basic), 'alice')
  const payload = Buffer.from(JSON.stringify({ sub: 'ci-bot', access: [] })).toString('base64url')
  const bearer = identityOf(`Bearer xx.${payload}.sig`, false)
  t.same(bearer, { kind: 'bearer', subject: 'ci-bot', claimed: true })
  t.equal(identityLabel(bearer), 'token:ci-bot (claimed)')
  t.equal(identityLabel(identityOf(`Bearer xx.${payload}.sig`, true)), 'token:ci-bot')
  t.same(identityOf('Bearer opaque-token', false), { kind: 'bearer', subject: undefined, claimed: true })
  t.same(identityOf(undefined, true), { kind: 'anonymous' })
  t.notMatch(JSON.stringify([basic, bearer]), /secret|sig/)
})

t.test('limiter hands slots over in order', async (t) => {
  // Tasks finish in an order the test chooses (not the order they started); each freed slot
  // must go to the oldest waiter, and a newcomer must queue behind those already waiting.
  const limit = limiter(2)
  const started: number[] = []
  const finish: (() => void)[] = []
  let active = 0
  let peak = 0
  const task = (i: number) =>
    limit(async () => {
      started.push(i)
      peak = Math.max(peak, ++active)
      await new Promise<void>((resolve) => (finish[i] = resolve))
      active--
    })
  const settle = () => new Promise((r) => setImmediate(r))
  const all = [0, 1, 2, 3, 4, 5].map(task)
  await settle()
  t.same(started, [0, 1], 'two slots, taken by the first two')
  finish[1]!()
  await settle()
  t.same(started, [0, 1, 2], "1's slot goes to 2, the oldest waiter")
  const late = task(9)
  finish[0]!()
  await settle()
  t.same(started, [0, 1, 2, 3], "0's slot goes to 3, not to the newcomer 9")
  finish[3]!()
  await settle()
  finish[2]!()
  await settle()
  t.same(started, [0, 1, 2, 3, 4, 5], 'then 4 and 5')
  finish[4]!()
  await settle()
  t.same(started, [0, 1, 2, 3, 4, 5, 9], 'and the newcomer last')
  finish[5]!()
  finish[9]!()
  await Promise.all([...all, late])
  t.equal(peak, 2, 'never more than two at once')
})

t.test('request bodies: bounded read, copy while streaming', async (t) => {
  const small = await readRequestBody(Readable.from([Buffer.from('ab'), Buffer.from('c')]), 10)
  t.same('bytes' in small ? small.bytes.toString() : '', 'abc')
  const big = await readRequestBody(Readable.from([Buffer.alloc(8), Buffer.alloc(8)]), 10)
  t.ok('tooLarge' in big)
  const copy = new BodyCopy(4)
  const out: Buffer[] = []
  for await (const c of Readable.from([Buffer.from('ab'), Buffer.from('cd')]).pipe(copy)) out.push(c as Buffer)
  t.equal(Buffer.concat(out).toString(), 'abcd', 'passes everything through')
  t.equal(copy.copy()?.toString(), 'abcd')
  const over = new BodyCopy(3)
  for await (const _ of Readable.from([Buffer.from('abcd')]).pipe(over)) void _
  t.equal(over.copy(), undefined, 'no copy past the bound')
})
