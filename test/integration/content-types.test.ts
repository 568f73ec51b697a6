import t from 'tap'
import { rawRequest } from '../helpers/raw-http.js'
import { buildImage, MT, pseudoRandom, sha256 } from '../helpers/oci-builder.js'
import { pushBlob } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// No content type may change what reaches the registry: a body fastify could parse (JSON,
// text) streams through untouched like any other, and so does one whose Content-Type fastify
// cannot read at all (it answers those 415 itself). Same requests straight and through the proxy.

/** Content types clients send, and ones fastify cannot parse (undefined: no header at all). */
const TYPES = [
  'text/plain',
  'text/plain; charset=utf-8',
  'application/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  undefined,
  '',
  'foo',
  'text/plain;;',
  '*/*',
  'a/b'.repeat(300),
]

const headersFor = (type: string | undefined): Record<string, string> => (type === undefined ? {} : { 'content-type': type })
const label = (type: string | undefined): string => (type === undefined ? 'no Content-Type' : JSON.stringify(type.length > 40 ? `${type.slice(0, 40)}…` : type))

t.test('a request body with Content-Type text/plain', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  for (const [i, type] of TYPES.entries()) {
    // Two megabytes: past fastify's 1 MiB body limit too.
    const body = pseudoRandom(`content-type ${i}`, 2 << 20)
    const digest = sha256(body)
    const answers: { patch: number; status: number; stored: number }[] = []
    for (const [base, repo] of [[registry.url, `direct/ct${i}`], [proxy.url, `proxied/ct${i}`]] as const) {
      // distribution refuses a PATCH that is not application/octet-stream: the proxy must too.
      const first = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/`)
      const chunked = new URL(String(first.headers['location']), base)
      const patch = await rawRequest(base, 'PATCH', `${chunked.pathname}${chunked.search}`, headersFor(type), body.subarray(0, 1 << 20))
      // A monolithic upload: the whole blob in the closing PUT, under the client's content type.
      const start = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/`)
      const session = new URL(String(start.headers['location']), base)
      session.searchParams.set('digest', digest)
      const put = await rawRequest(base, 'PUT', `${session.pathname}${session.search}`, headersFor(type), body)
      const stored = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })
      answers.push({ patch: patch.status, status: put.status, stored: Number(stored.headers.get('content-length') ?? -1) })
    }
    t.same(answers[1], answers[0], `${label(type)}: the same answers through the proxy`)
    // Go's net/http reads form bodies itself (distribution asks for the digest form value), so
    // the registry never stores those: parity is all the proxy owes there.
    if (!/form/.test(type ?? '')) t.match(answers[0], { status: 201, stored: body.length }, `${label(type)}: the blob arrives whole`)
  }
})

t.test('a manifest PUT under any Content-Type gets the registry answer', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const image = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'manifest content types' })
  for (const [i, type] of [MT.ociManifest, `${MT.ociManifest}; charset=utf-8`, ...TYPES].entries()) {
    const answers: { status: number; digest: unknown }[] = []
    for (const [base, repo] of [[registry.url, `direct/m${i}`], [proxy.url, `proxied/m${i}`]] as const) {
      await pushBlob(base, repo, image.config)
      for (const layer of image.layers) await pushBlob(base, repo, layer)
      const put = await rawRequest(base, 'PUT', `/v2/${repo}/manifests/1.0`, headersFor(type), image.manifest.bytes)
      // The registry reads the manifest's type from Content-Type: a wrong one is its refusal, not ours.
      answers.push({ status: put.status, digest: put.headers['docker-content-digest'] ?? JSON.parse(put.body.toString()).errors[0].code })
    }
    t.same(answers[1], answers[0], `${label(type)}: ${answers[0]?.status} ${String(answers[0]?.digest)} both ways`)
  }
})
