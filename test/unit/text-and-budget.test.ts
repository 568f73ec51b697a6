import t from 'tap'
import { printable, printableDeep } from '../../src/oci/printable.js'
import { ListBodyBudget } from '../../src/proxy/list-body-budget.js'

// printable.ts (what is escaped, what is kept) and list-body-budget.ts (the global bound, a
// client's quarter, releases counted once).

t.test('printable escapes controls and bidi characters, and nothing else', async (t) => {
  const cases: [string, string][] = [
    ['linux/amd64', 'linux/amd64'],
    ['arm64\u202e', 'arm64\\u202e'],
    ['\u001b[31mred', '\\u001b[31mred'],
    ['a\nb\r\tc\u0000', 'a\\u000ab\\u000d\\u0009c\\u0000'],
    ['\u007f\u0085\u009b', '\\u007f\\u0085\\u009b'],
    ['\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069', '\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a\\u202b\\u202c\\u202d\\u2066\\u2067\\u2068\\u2069'],
    // Letters of any script, emoji and a backslash stay as they are.
    ['Ünïcødé 架构 ſ K 🙂 \\u202e', 'Ünïcødé 架构 ſ K 🙂 \\u202e'],
  ]
  // Named by the escaped form: a raw U+0085 in a test name would end its TAP line.
  for (const [input, output] of cases) t.equal(printable(input), output, output)
  const once = printable('x\u202ey')
  t.equal(printable(once), once, 'escaping twice changes nothing')
  t.same(printableDeep({ platform: { architecture: 'a\u202e', features: ['\u001b'] }, size: 3, ['k\u0007']: null }), { platform: { architecture: 'a\\u202e', features: ['\\u001b'] }, size: 3, ['k\\u0007']: null }, 'every string of a value, keys included')
})

t.test('the list body budget: a global bound, a quarter per client, each release once', async (t) => {
  const MiB = 1 << 20
  const budget = new ListBodyBudget(64 * MiB, 4 * MiB)
  t.equal(budget.maxPerClient, 16 * MiB)
  const a = [1, 2, 3, 4].map(() => budget.reserve('a', 4 * MiB))
  t.ok(a.every((r) => r !== undefined), 'a client may hold four 4 MiB lists')
  t.equal(budget.reserve('a', 1), undefined, 'and not a byte more')
  for (const c of ['b', 'c', 'd']) for (let i = 0; i < 4; i++) t.ok(budget.reserve(c, 4 * MiB) !== undefined)
  t.equal(budget.used, 64 * MiB)
  t.equal(budget.reserve('e', 1), undefined, 'a full budget refuses everyone')
  a[0]!()
  a[0]!()
  t.equal(budget.used, 60 * MiB, 'a release counts once')
  t.ok(budget.reserve('e', 4 * MiB) !== undefined, 'and makes room for another client')
  t.equal(new ListBodyBudget(4 * MiB, 4 * MiB).maxPerClient, 4 * MiB, 'one client may always hold one whole list')
})
