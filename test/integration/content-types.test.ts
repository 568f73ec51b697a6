import t from 'tap'
import { rawRequest } from '../helpers/raw-http.js'
import { startProxy } from '../helpers/proxy.js'
import { startRegistry } from '../helpers/registry.js'
import { pseudoRandom, sha256 } from '../helpers/oci-builder.js'

// No content type may change what reaches the registry: a body fastify could parse (JSON,
// text) streams through untouched like any other. Same requests straight and through the proxy.

t.test('a request body with Content-Type text/plain', async (t) => {
  const registry = await startRegistry()
  t.teardown(() => registry.stop())
  const proxy = await startProxy(registry.url)
  t.teardown(() => proxy.close())
  const types = ['text/plain', 'text/plain; charset=utf-8', 'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream']
  for (const [i, type] of types.entries()) {
    // Two megabytes: past fastify's 1 MiB body limit too.
    const body = pseudoRandom(`content-type ${i}`, 2 << 20)
    const digest = sha256(body)
    const answers: { patch: number; status: number; stored: number }[] = []
    for (const [base, repo] of [[registry.url, `direct/ct${i}`], [proxy.url, `proxied/ct${i}`]] as const) {
      // distribution refuses a PATCH that is not application/octet-stream: the proxy must too.
      const first = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/`)
      const chunked = new URL(String(first.headers['location']), base)
      const patch = await rawRequest(base, 'PATCH', `${chunked.pathname}${chunked.search}`, { 'content-type': type }, body.subarray(0, 1 << 20))
      // A monolithic upload: the whole blob in the closing PUT, under the client's content type.
      const start = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/`)
      const session = new URL(String(start.headers['location']), base)
      session.searchParams.set('digest', digest)
      const put = await rawRequest(base, 'PUT', `${session.pathname}${session.search}`, { 'content-type': type }, body)
      const stored = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })
      answers.push({ patch: patch.status, status: put.status, stored: Number(stored.headers.get('content-length') ?? -1) })
    }
    t.same(answers[1], answers[0], `${type}: the same answers through the proxy`)
    // Go's net/http reads form bodies itself (distribution asks for the digest form value), so
    // the registry never stores those: parity is all the proxy owes there.
    if (!/form/.test(type)) t.match(answers[0], { status: 201, stored: body.length }, `${type}: the blob arrives whole`)
  }
})
