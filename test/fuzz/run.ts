import { fuzz, seedRegistry } from '../helpers/push-fuzzer.js'
import { startProxy } from '../helpers/proxy.js'
import { startRegistry } from '../helpers/registry.js'

// The long run of the differential fuzzer: npm run fuzz -- [SEED] [CASES]. Prints the seed,
// progress, the figures, and every violating case; exits 1 when one is found.

const seed = Number(process.argv[2] ?? Date.now() % 1_000_000)
const cases = Number(process.argv[3] ?? 5000)
if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(cases) || cases < 1) {
  process.stderr.write('usage: npm run fuzz -- [SEED] [CASES]\n')
  process.exit(2)
}
process.stdout.write(`differential fuzzer: seed ${seed}, ${cases} cases (npm run fuzz -- ${seed} ${cases} repeats it)\n`)
const direct = await startRegistry()
const behind = await startRegistry()
const proxy = await startProxy(behind.url)
let code = 0
try {
  const pool = await seedRegistry(direct.url)
  await seedRegistry(behind.url)
  let done = 0
  const report = await fuzz({
    seed,
    cases,
    pool,
    direct: direct.url,
    proxy: proxy.url,
    proxied: behind.url,
    onCase: (o) => {
      if (o.violation !== undefined) process.stdout.write(`VIOLATION ${o.fuzzCase.summary}: ${o.violation}\n  body ${o.fuzzCase.body.toString('latin1')}\n`)
      if (++done % 500 === 0) process.stdout.write(`  ${done} cases\n`)
    },
  })
  process.stdout.write(
    `${report.cases} cases in ${(report.ms / 1000).toFixed(1)} s: stored straight ${report.storedDirect} (broken ${report.storedBroken}, sound ${report.storedSound}), ` +
      `stored through the proxy ${report.proxiedStored}, violations ${report.violations.length}\n`,
  )
  code = report.violations.length === 0 ? 0 : 1
} finally {
  await proxy.close()
  await direct.stop()
  await behind.stop()
}
process.exit(code)
