import t from 'tap'
import { request } from 'undici'
import { json, startFakeRegistry } from '../helpers/fake-registry.js'
import { rawRequest } from '../helpers/raw-http.js'
import { freePort } from '../helpers/tools.js'
import { proxyFor } from '../helpers/fixture.js'

// What the proxy tells the registry about the client, and how it points clients back at
// itself. A stand-in registry that ignores X-Forwarded-* answers with its own absolute URLs.

t.test('Location and forwarded headers', async (t) => {
  const fake = await startFakeRegistry((req, res) => {
    res.writeHead(202, {
      location: `http://127.0.0.1:${fake.port}/v2/app/blobs/uploads/u-1?_state=abc`,
      'docker-upload-uuid': 'u-1',
      'www-authenticate': 'Bearer realm="https://auth.example/token",service="registry"',
      connection: 'keep-alive',
    })
    res.end()
  })
  t.teardown(() => fake.close())

  t.test('untrusted: the client address wins, forwarded headers from the client are replaced', async (t) => {
    const proxy = await proxyFor(t, fake.url)
    const res = await request(`${proxy.url}/v2/app/blobs/uploads/`, {
      method: 'POST',
      headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', forwarded: 'host=evil.example', authorization: 'Bearer abc.def.ghi' },
    })
    await res.body.dump()
    t.equal(res.headers['location'], `http://${proxy.host}/v2/app/blobs/uploads/u-1?_state=abc`, 'absolute upstream Location rewritten to the proxy')
    t.equal(res.headers['www-authenticate'], 'Bearer realm="https://auth.example/token",service="registry"', 'WWW-Authenticate untouched')
    t.equal(res.headers['docker-upload-uuid'], 'u-1')
    const seen = fake.requests.at(-1)!
    t.equal(seen.headers['x-forwarded-host'], proxy.host, 'the registry is told the host the client used')
    t.equal(seen.headers['x-forwarded-proto'], 'http')
    t.equal(seen.headers['forwarded'], undefined, 'a client-made Forwarded header is dropped')
    t.equal(seen.headers['authorization'], 'Bearer abc.def.ghi', 'Authorization passes untouched')
    t.equal(seen.headers['host'], `127.0.0.1:${fake.port}`, 'Host is the upstream, for virtual-hosted registries')
  })

  t.test('trusted (behind an ingress): X-Forwarded-Host/Proto name the public address', async (t) => {
    const proxy = await proxyFor(t, fake.url, { trustForwardedHeaders: true })
    const res = await request(`${proxy.url}/v2/app/blobs/uploads/`, {
      method: 'POST',
      headers: { 'x-forwarded-host': 'registry.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-for': '10.1.2.3' },
    })
    await res.body.dump()
    t.equal(res.headers['location'], 'https://registry.example.com/v2/app/blobs/uploads/u-1?_state=abc')
    const seen = fake.requests.at(-1)!
    t.equal(seen.headers['x-forwarded-host'], 'registry.example.com')
    t.equal(seen.headers['x-forwarded-proto'], 'https')
    t.equal(seen.headers['x-forwarded-for'], '10.1.2.3, 127.0.0.1')
  })

  t.test('Expect and hop-by-hop headers are not forwarded', async (t) => {
    const proxy = await proxyFor(t, fake.url)
    const res = await request(`${proxy.url}/v2/app/blobs/uploads/`, { method: 'POST', headers: { 'proxy-authorization': 'Basic eDp5', te: 'trailers' } })
    await res.body.dump()
    const seen = fake.requests.at(-1)!
    t.equal(seen.headers['proxy-authorization'], undefined)
    t.equal(seen.headers['te'], undefined)
  })
})

t.test('an unreachable registry gets a prompt OCI error, not a hang', async (t) => {
  const port = await freePort()
  const proxy = await proxyFor(t, `http://127.0.0.1:${port}`)
  const res = await request(`${proxy.url}/v2/app/manifests/latest`, { headersTimeout: 10_000 })
  const body = (await res.body.json()) as { errors: { code: string; message: string }[] }
  t.equal(res.statusCode, 502)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(body.errors[0]?.code, 'UNAVAILABLE')
  t.match(body.errors[0]?.message, /refused the connection/)
  const ready = await request(`${proxy.url}/readyz`)
  t.equal(ready.statusCode, 503, 'readyz says not ready')
  await ready.body.dump()
  const health = await request(`${proxy.url}/healthz`)
  t.equal(health.statusCode, 200, 'healthz: the process itself is fine')
  await health.body.dump()
})

t.test('a registry that answers 503 is shown as is, not retried behind the client', async (t) => {
  // With a length, as distribution sends its errors (a chunked answer is asked again by the
  // undici path: read-carrier.test.ts).
  const body = JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'busy' }] })
  const fake = await startFakeRegistry((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'retry-after': '1' })
    res.end(body)
  })
  t.teardown(() => fake.close())
  const proxy = await proxyFor(t, fake.url)
  const res = await request(`${proxy.url}/v2/app/manifests/latest`)
  await res.body.dump()
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.equal(fake.requests.length, 1, 'one request upstream')
})

t.test('path tricks are refused before they reach the registry', async (t) => {
  const fake = await startFakeRegistry((_req, res) => json(res, 200, {}))
  t.teardown(() => fake.close())
  const proxy = await proxyFor(t, fake.url)
  for (const path of ['/v2/app/%2e%2e/secret/manifests/latest', '/v2/app/manifests%2Flatest', '/v2/a/../b/manifests/latest', '/v2/app/blobs/uploads/%E0%A4%A']) {
    const res = await rawRequest(proxy.url, 'GET', path)
    const body = JSON.parse(res.body.toString()) as { errors: { code: string }[] }
    t.ok(res.status === 400 || res.status === 404, `${path}: ${res.status}`)
    t.ok(body.errors.length > 0, `${path}: OCI error body`)
  }
  t.equal(fake.requests.length, 0, 'nothing reached the registry')
})
