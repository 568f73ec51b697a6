import t from 'tap'
import { CLI, spawnProxy } from '../helpers/proxy.js'
import { run } from '../helpers/tools.js'
import { registryFor } from '../helpers/fixture.js'

// The process entry as a user runs it.

// Only a hang fails on time: a refused start takes well under a second on a quiet machine, but
// Node's own start-up stretched past 15 s on a heavily loaded one.
const HANG_MS = 60_000

t.test('bad flags or config: one line naming the key, non-zero exit', async (t) => {
  const cases: { args: string[]; env?: Record<string, string>; message: RegExp }[] = [
    { args: ['--listen', 'nowhere'], message: /^manifest-guard: invalid config: listen \(flag --listen\): expected HOST:PORT/ },
    { args: ['--upstream', 'ftp://x'], message: /^manifest-guard: invalid config: upstream \(flag --upstream\)/ },
    { args: ['--bogus'], message: /^manifest-guard: invalid flags: Unknown option '--bogus'/ },
    { args: [], env: { MANIFEST_GUARD_VALIDATION_MODE: 'maybe' }, message: /validation\.mode \(environment MANIFEST_GUARD_VALIDATION_MODE\)/ },
    // A secret is never a flag (ps shows flags to every user); the value is not echoed.
    { args: ['--admin-token', 'Sekr1t-value'], message: /^manifest-guard: invalid flags: --admin-token: a secret is never taken as a flag .*MANIFEST_GUARD_ADMIN_TOKEN.*admin\.tokenFile \(--admin-token-file\)/ },
    // The image's defaults without MANIFEST_GUARD_UPSTREAM: the proxy in front of itself (issue 23).
    { args: ['--listen', '0.0.0.0:5000', '--upstream', 'http://127.0.0.1:5000'], message: /^manifest-guard: invalid config: upstream: http:\/\/127\.0\.0\.1:5000 is the proxy's own listen address \(0\.0\.0\.0:5000\); set upstream \(MANIFEST_GUARD_UPSTREAM/ },
    { args: ['--listen', '127.0.0.1:5443', '--upstream', 'https://localhost:5443'], message: /^manifest-guard: invalid config: upstream: https:\/\/localhost:5443 is the proxy's own listen address/ },
    { args: ['--ledger-redis-password=Sekr1t-value'], message: /^manifest-guard: invalid flags: --ledger-redis-password: a secret is never taken as a flag/ },
  ]
  for (const c of cases) {
    const r = await run(process.execPath, [CLI, ...c.args], { env: { ...process.env, ...c.env }, timeoutMs: HANG_MS })
    t.equal(r.code, 2, `${c.args.join(' ')}: exit code 2`)
    t.match(r.stderr, c.message)
    t.equal(r.stderr.trim().split('\n').length, 1, 'exactly one line')
    t.notMatch(r.stderr, 'Sekr1t-value', 'no secret echoed')
  }
})

t.test('--help lists every flag', async (t) => {
  const r = await run(process.execPath, [CLI, '--help'], { timeoutMs: HANG_MS })
  t.equal(r.code, 0)
  t.match(r.stdout, /--upstream <http\(s\) URL>/)
  t.match(r.stdout, /--validation-mode <enforce \| warn \| off>/)
  t.match(r.stdout, /MANIFEST_GUARD_LISTEN/)
})

t.test('starts with --upstream and --listen, serves, and stops on SIGTERM', async (t) => {
  const registry = await registryFor(t)
  const proxy = await spawnProxy(['--upstream', registry.url])
  const res = await fetch(`${proxy.url}/v2/`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0', 'the registry answered through it')
  const ready = await fetch(`${proxy.url}/readyz`)
  t.equal(ready.status, 200)
  await proxy.stop()
  t.equal(proxy.child.exitCode, 0, 'clean exit on SIGTERM')
  t.match(proxy.output(), /"msg":"manifest-guard is up"/)
})

t.test('a port already in use is a clear error', async (t) => {
  const first = await spawnProxy(['--upstream', 'http://127.0.0.1:9'])
  t.teardown(() => first.stop())
  const r = await run(process.execPath, [CLI, '--listen', first.host], { timeoutMs: HANG_MS })
  t.equal(r.code, 1)
  t.match(r.stderr, /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/)
})
