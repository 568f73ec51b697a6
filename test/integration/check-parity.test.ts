import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { CLI } from '../helpers/proxy.js'
import { startRedis } from '../helpers/redis.js'
import { pushImage, putManifest } from '../helpers/registry-http.js'
import { run } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// One list, one set of settings, three judges: GET /_guard/v1/check, `manifest-guard check`
// and the proxy itself (the same list pushed again onto its tag). They share the Redis ledger
// and the per-repository rules, and must give the same verdict: a rule's staleChild: warn
// makes all three warn where, without it, all three refuse.

type Verdict = 'sound' | 'warned' | 'broken'

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }

t.test('the check API, manifest-guard check and the proxy judge a list alike', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const registry = await registryFor(t)
  const settings = { ledger: { store: 'redis', redisUrl: redis.url }, validation: { rules: [{ match: 'mirror/**', staleChild: 'warn' }] } }
  const proxy = await proxyFor(t, registry.url, settings)
  const dir = mkdtempSync(join(tmpdir(), 'mg-parity-'))
  const file = join(dir, 'guard.yaml')
  writeFileSync(file, JSON.stringify(settings))

  const judge = async (repository: string, tag: string, list: ReturnType<typeof buildIndex>): Promise<{ api: Verdict; cli: Verdict; proxy: Verdict }> => {
    const res = await fetch(`${proxy.adminUrl}/_guard/v1/check/${repository}/${tag}`)
    const api = ((await res.json()) as { status: string }).status
    const cli = await run(process.execPath, [CLI, 'check', '--config', file, `${registry.host}/${repository}:${tag}`], { timeoutMs: 60_000 })
    const before = proxy.logs.records.length
    const pushed = await putManifest(proxy.url, repository, tag, list.manifest)
    await pushed.arrayBuffer()
    const event = proxy.logs.records.slice(before).find((r) => String(r['event']).startsWith('push.'))?.['event']
    return {
      api: api as Verdict,
      cli: cli.code === 1 ? 'broken' : cli.code === 0 && /sound, with \d+ warning/.test(cli.stdout) ? 'warned' : cli.code === 0 ? 'sound' : (`exit ${cli.code}: ${cli.stderr}` as Verdict),
      proxy: pushed.status === 400 && event === 'push.rejected' ? 'broken' : pushed.status === 201 && event === 'push.warned' ? 'warned' : pushed.status === 201 && event === 'push.accepted' ? 'sound' : (`${pushed.status} ${String(event)}` as Verdict),
    }
  }

  for (const [repository, stale] of [['team/app', 'broken'], ['mirror/app', 'warned']] as const) {
    // Release 1.0 and latest from one build; then 1.1.0, then latest rolled back to 1.0.0.
    const builds = ['1.0.0', '1.1.0'].map((v) => ({ v, amd: buildImage({ platform: amd64, seed: `parity-${v}` }), arm: buildImage({ platform: arm64, seed: `parity-${v}` }) }))
    for (const { v, amd, arm } of builds) {
      for (const tag of [v, 'latest']) {
        await pushImage(proxy.url, repository, amd, `${tag}-amd64`)
        await pushImage(proxy.url, repository, arm, `${tag}-arm64`)
        t.equal((await putManifest(proxy.url, repository, tag, buildIndex([amd, arm]).manifest)).status, 201, `${repository}:${tag} (${v})`)
      }
    }
    const release = buildIndex([builds[0]!.amd, builds[0]!.arm])
    t.equal((await putManifest(proxy.url, repository, 'latest', release.manifest)).status, 201, 'latest rolled back to 1.0.0')
    const rollback = proxy.logs.find((r) => r['event'] === 'push.warned' && r['repository'] === repository && r['reference'] === 'latest')
    t.same((rollback[0]?.['problems'] as { cause: string }[] | undefined)?.map((p) => p.cause), ['released-copy', 'released-copy'], 'the rollback: a copy of release 1.0.0, warned')
    // Checked where it is, or sent again onto latest, which holds it: judged by latest's own tags.
    t.same(await judge(repository, 'latest', release), { api: stale, cli: stale, proxy: stale }, `${repository}: latest re-sent, ${stale} by all three`)
    t.same(await judge(repository, '1.1.0', buildIndex([builds[1]!.amd, builds[1]!.arm])), { api: 'sound', cli: 'sound', proxy: 'sound' }, `${repository}: 1.1.0 is sound for all three`)

    // 1.1.0-amd64 rebuilt: the list 1.1.0 re-sent onto the tag that holds it names an old build.
    await pushImage(proxy.url, repository, buildImage({ platform: amd64, seed: 'parity-1.1.0-rebuilt' }), '1.1.0-amd64')
    t.same(await judge(repository, '1.1.0', buildIndex([builds[1]!.amd, builds[1]!.arm])), { api: stale, cli: stale, proxy: stale }, `${repository}: stale, ${stale} by all three`)
  }
})
