import t from 'tap'
import { request } from 'undici'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { pushChildren, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The admin listener: Prometheus metrics that move with the traffic, recent decisions with
// filters, and the token that guards the API.

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

t.test('metrics move as lists are pushed', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { admin: { token: 'admin-secret' } })
  const scrape = async () => (await (await fetch(`${proxy.adminUrl}/metrics`)).text())

  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'metrics', layerCount: 2 })
  const gone = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'metrics' })
  const before = await scrape()
  await pushChildren(proxy.url, 'team/app', buildIndex([amd]))
  t.equal((await putManifest(proxy.url, 'team/app', 'good', buildIndex([amd]).manifest)).status, 201)
  t.equal((await putManifest(proxy.url, 'team/app', 'bad', buildIndex([amd, gone]).manifest)).status, 400)
  const after = await scrape()

  const delta = (series: string) => value(after, series) - value(before, series)
  t.equal(delta('manifest_guard_list_pushes_total{result="accepted"}'), 1)
  t.equal(delta('manifest_guard_list_pushes_total{result="rejected"}'), 1)
  t.equal(delta('manifest_guard_list_push_problems_total{result="rejected",cause="never-pushed"}'), 1)
  t.equal(delta('manifest_guard_validation_duration_seconds_count{result="accepted"}'), 1)
  t.equal(delta('manifest_guard_cache_lookups_total{result="hit"}'), 2, 'the child body came from the cache in both pushes')
  t.ok(delta('manifest_guard_upstream_lookups_total{kind="manifest",status="404"}') >= 1, 'upstream lookups by kind and status')
  t.ok(delta('manifest_guard_proxied_requests_total{method="PUT",status_class="2xx"}') >= 5, 'proxied requests by method and class')
  t.equal(delta('manifest_guard_proxied_requests_total{method="PUT",status_class="4xx"}'), 1)
  t.ok(delta('manifest_guard_proxied_bytes_total{direction="in"}') > amd.layers[0]!.bytes.length, 'bytes in')
  t.ok(delta('manifest_guard_proxied_bytes_total{direction="out"}') > 0, 'bytes out')
  t.match(after, /manifest_guard_process_resident_memory_bytes \d+/, 'process metrics')

  t.test('recent decisions, filtered, behind the token', async (t) => {
    const denied = await request(`${proxy.adminUrl}/_guard/v1/decisions`)
    t.equal(denied.statusCode, 401, 'the token is required')
    t.equal(((await denied.body.json()) as { errors: { code: string }[] }).errors[0]?.code, 'UNAUTHORIZED')
    const wrong = await request(`${proxy.adminUrl}/_guard/v1/decisions`, { headers: { authorization: 'Bearer nope' } })
    t.equal(wrong.statusCode, 401)
    await wrong.body.dump()

    const get = async (q: string) => {
      const res = await request(`${proxy.adminUrl}/_guard/v1/decisions${q}`, { headers: { authorization: 'Bearer admin-secret' } })
      t.equal(res.statusCode, 200)
      return ((await res.body.json()) as { decisions: { event: string; reference: string }[] }).decisions
    }
    t.same((await get('')).map((d) => d.reference), ['bad', 'good'], 'newest first')
    t.same((await get('?result=rejected')).map((d) => d.reference), ['bad'])
    t.same(await get('?repository=other'), [])
    t.same((await get('?limit=1')).length, 1)
    for (const bad of ['?result=bogus', '?repository=Not%20A%20Name', '?limit=lots']) {
      const res = await request(`${proxy.adminUrl}/_guard/v1/decisions${bad}`, { headers: { authorization: 'Bearer admin-secret' } })
      t.equal(res.statusCode, 400, `${bad}: a 400, as the page answers`)
      t.match(await res.body.text(), /^\{"errors":\[/)
    }

    const open = await fetch(`${proxy.adminUrl}/metrics`)
    t.equal(open.status, 200, '/metrics stays open for scrapers')
    const notOnProxyPort = await fetch(`${proxy.url}/_guard/v1/decisions`)
    t.equal(notOnProxyPort.status, 404, 'the admin API is not on the proxy port')
  })

  t.test('the admin check endpoint', async (t) => {
    await pushImage(registry.url, 'team/check', amd)
    await putManifest(registry.url, 'team/check', 'v1', buildIndex([amd]).manifest)
    const res = await request(`${proxy.adminUrl}/_guard/v1/check/team/check/v1`, { headers: { authorization: 'Bearer admin-secret' } })
    t.equal(res.statusCode, 200)
    t.match(await res.body.json(), { status: 'sound', repository: 'team/check', reference: 'v1', children: 1, blobs: 3 })
    await fetch(`${registry.url}/v2/team/check/blobs/${amd.layers[1]!.digest}`, { method: 'DELETE' })
    const broken = await request(`${proxy.adminUrl}/_guard/v1/check/team/check/v1`, { headers: { authorization: 'Bearer admin-secret' } })
    const body = (await broken.body.json()) as { status: string; errors: { message: string }[] }
    t.equal(body.status, 'broken', 'finds what was deleted behind the cache')
    t.match(body.errors[0]?.message, amd.layers[1]!.digest)
  })
})

t.test('with admin.apiListen the API has a listener of its own and admin.listen serves /metrics only', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { admin: { apiListen: '127.0.0.1:0', token: 'api-secret' } })
  t.ok(proxy.apiUrl !== undefined && proxy.apiUrl !== proxy.adminUrl, 'two listeners')
  t.equal((await fetch(`${proxy.adminUrl}/metrics`)).status, 200, '/metrics on admin.listen')
  const hidden = await fetch(`${proxy.adminUrl}/_guard/v1/decisions`, { headers: { authorization: 'Bearer api-secret' } })
  t.equal(hidden.status, 404, 'no API on the metrics listener, even with the token')
  t.equal((await fetch(`${proxy.apiUrl}/_guard/v1/decisions`)).status, 401, 'the API wants its token')
  t.equal((await fetch(`${proxy.apiUrl}/_guard/v1/decisions`, { headers: { authorization: 'Bearer api-secret' } })).status, 200)
  t.equal((await fetch(`${proxy.apiUrl}/metrics`)).status, 404, 'and serves no metrics')
})

t.test('/readyz and /healthz on the admin port too (where the chart probes): ready without asking the registry', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  for (const probe of ['/readyz', '/healthz']) {
    t.equal((await fetch(`${proxy.adminUrl}${probe}`)).status, 200, `${probe} on the admin port`)
    t.equal((await fetch(`${proxy.url}${probe}`)).status, 200, `${probe} on the proxy port`)
  }
  await registry.stop()
  t.equal((await fetch(`${proxy.url}/readyz`)).status, 503, "the proxy port's /readyz says the registry is away")
  t.equal((await fetch(`${proxy.adminUrl}/readyz`)).status, 200, "the admin port's does not: a registry hiccup must not empty the Service")
})
