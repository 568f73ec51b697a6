import t from 'tap'
import { request } from 'undici'
import { assertOk, skopeoPush } from '../helpers/clients.js'
import { buildImage, buildIndex, ociLayoutRef } from '../helpers/oci-builder.js'
import { errorsOf, putManifest } from '../helpers/registry-http.js'
import { freePort, waitFor } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Pushes that bypass the proxy still reach the ledger through the registry's own
// notifications, so a later stale list that names them is diagnosed as stale.

const TOKEN = 'events-shared-token'

t.test('a direct push reaches the ledger through registry notifications', async (t) => {
  const adminPort = await freePort()
  const registry = await registryFor(t, { notify: { url: `http://127.0.0.1:${adminPort}/_guard/v1/events`, token: TOKEN } })
  const proxy = await proxyFor(t, registry.url, { admin: { listen: `127.0.0.1:${adminPort}` }, registryEvents: { token: TOKEN } })
  const ledger = proxy.app.guard.ledger

  const old = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'events-old' })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'events' })
  const rebuilt = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'events-new' })
  // Internal CI pushes straight to the registry, not through the proxy.
  assertOk(await skopeoPush(ociLayoutRef(old), `${registry.host}/team/app:1.0-amd64`), 'direct push amd64')
  assertOk(await skopeoPush(ociLayoutRef(arm), `${registry.host}/team/app:1.0-arm64`), 'direct push arm64')
  await waitFor(async () => (await ledger.tagHistory('team/app', '1.0-amd64')).length === 1, 15_000, 'the push event')
  assertOk(await skopeoPush(ociLayoutRef(rebuilt), `${registry.host}/team/app:1.0-amd64`), 'direct push of the rebuild')
  await waitFor(async () => (await ledger.tagHistory('team/app', '1.0-amd64')).length === 2, 15_000, 'the second push event')

  const history = await ledger.tagHistory('team/app', '1.0-amd64')
  t.same(history.map((r) => r.digest), [rebuilt.manifest.digest, old.manifest.digest], 'the ledger learned both pushes, newest first')
  t.equal(history[0]?.source, 'registry-event')

  const res = await putManifest(proxy.url, 'team/app', '1.0', buildIndex([old, arm]).manifest)
  t.equal(res.status, 400, 'the stale list is refused')
  const errors = await errorsOf(res)
  t.match(errors[0]?.message, `stale child ${old.manifest.digest} (linux/amd64) is an old build: team/app:1.0-amd64 has been pushed again since`)

  t.test('the endpoint requires the shared token', async (t) => {
    const body = JSON.stringify({ events: [] })
    const none = await request(`${proxy.adminUrl}/_guard/v1/events`, { method: 'POST', headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json' }, body })
    t.equal(none.statusCode, 401)
    await none.body.dump()
    const ok = await request(`${proxy.adminUrl}/_guard/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', authorization: `Bearer ${TOKEN}` },
      body,
    })
    t.equal(ok.statusCode, 200)
    await ok.body.dump()
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text()
    t.match(metrics, /manifest_guard_registry_events_total\{outcome="rejected"\} 1/)
    t.match(metrics, /manifest_guard_registry_events_total\{outcome="recorded"\} \d+/)
  })
})
