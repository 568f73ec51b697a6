import t from 'tap'
import type { DecisionEvent } from '../../src/proxy/contracts.js'
import { DecisionRing } from '../../src/observability/decision-ring.js'

// The ring of recent decisions stays within its count and its bytes, newest first.

function event(i: number, filler = 0): DecisionEvent {
  return { event: 'push.rejected', repository: `team/r${i}`, reference: 'v', problems: [{ message: 'x'.repeat(filler) }] } as unknown as DecisionEvent
}

t.test('bounded by count', async (t) => {
  const ring = new DecisionRing(3)
  for (let i = 0; i < 10; i++) ring.add(event(i))
  t.same(ring.list({}).map((e) => e.repository), ['team/r9', 'team/r8', 'team/r7'])
})

t.test('bounded by bytes: large records push the oldest out', async (t) => {
  const ring = new DecisionRing(1000, 100_000)
  for (let i = 0; i < 50; i++) ring.add(event(i, 10_000))
  t.ok(ring.bytes <= 100_000, `holds ${ring.bytes} bytes`)
  const kept = ring.list({ limit: 1000 })
  t.ok(kept.length >= 4 && kept.length <= 5, `kept the newest ${kept.length}`)
  t.equal(kept[0]?.repository, 'team/r49')
})

t.test('one record larger than the budget is still kept, alone', async (t) => {
  const ring = new DecisionRing(10, 1000)
  ring.add(event(1))
  ring.add(event(2, 5000))
  t.same(ring.list({}).map((e) => e.repository), ['team/r2'])
})
