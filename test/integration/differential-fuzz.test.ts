import t from 'tap'
import { fuzz, seedRegistry } from '../helpers/push-fuzzer.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The standing differential fuzzer, bounded run (the long run: npm run fuzz -- SEED CASES).
// Generated manifest PUTs go straight to one registry and through the proxy to another, both
// seeded with the same content: whatever the registry stores broken, the proxy refused;
// whatever it stores sound, the proxy passed with the same digest. FUZZ_SEED repeats a run.

t.test('manifest PUTs: the registry is the oracle', async (t) => {
  const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000)
  const cases = Number(process.env['FUZZ_CASES'] ?? 300)
  t.comment(`seed ${seed} (FUZZ_SEED=${seed} repeats this run), ${cases} cases`)
  const direct = await registryFor(t)
  const behind = await registryFor(t)
  const proxy = await proxyFor(t, behind.url)
  const pool = await seedRegistry(direct.url)
  t.same(await seedRegistry(behind.url), pool, 'both registries hold the same content')

  const report = await fuzz({ seed, cases, pool, direct: direct.url, proxy: proxy.url, proxied: behind.url })
  for (const v of report.violations.slice(0, 10)) {
    t.fail(`seed ${seed} ${v.fuzzCase.summary}: ${v.violation} (straight ${v.direct.status}, proxied ${v.proxied.status} ${v.proxied.code ?? ''}); body ${v.fuzzCase.body.toString('latin1')}`)
  }
  t.equal(report.violations.length, 0, `seed ${seed}: no case breaks the promise (${report.cases} cases in ${Math.round(report.ms)} ms)`)
  // The run must have tried both sides of the promise for it to say anything.
  t.ok(report.storedBroken >= 10, `the registry stored ${report.storedBroken} broken lists straight`)
  t.ok(report.storedSound >= 10, `and ${report.storedSound} sound ones`)
  t.ok(report.proxiedStored >= 10, `${report.proxiedStored} lists were stored through the proxy`)
})
