import { connect } from 'node:net'
import t from 'tap'
import { json, startFakeRegistry } from '../helpers/fake-registry.js'
import { heapAfterGc } from '../helpers/heap.js'
import { MT } from '../helpers/oci-builder.js'
import { rawRequest } from '../helpers/raw-http.js'
import { proxyFor } from '../helpers/fixture.js'

// The bad-input corpus against a running proxy in front of a stand-in registry that records
// what reaches it. Every entry gets a clear 4xx OCI error in bounded time; the process keeps
// serving; the registry sees none of them.

const D = `sha256:${'a'.repeat(64)}`
const descriptor = (i: number) => ({ mediaType: MT.ociManifest, digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 100, platform: { os: 'linux', architecture: `a${i}` } })
const index = (manifests: unknown[], extra: object = {}) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests, ...extra }))

interface Entry {
  readonly name: string
  readonly method?: string
  readonly path?: string
  readonly headers?: Record<string, string>
  readonly body?: Buffer
  readonly status: number
  readonly code: string
}

const deepJson = Buffer.from(`{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[],"annotations":{"x":${'['.repeat(1000)}${']'.repeat(1000)}}}`)

const CORPUS: Entry[] = [
  { name: 'malformed JSON', body: Buffer.from('{"schemaVersion":2,'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'JSON that is not an object (string)', body: Buffer.from('"index"'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'JSON that is not an object (null)', body: Buffer.from('null'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'empty body', body: Buffer.alloc(0), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'duplicate keys', body: Buffer.from(`{"schemaVersion":2,"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[]}`), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'wrong mediaType in the body', body: index([], { mediaType: 'application/vnd.example.not-a-manifest' }), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'Content-Type and body disagree', headers: { 'content-type': MT.dockerList }, body: index([]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'an index without Content-Type, by its body', headers: {}, body: index([{ ...descriptor(1), digest: 'md5:abc' }]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'non-UTF-8', body: Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'over 4 MiB', body: Buffer.alloc((4 << 20) + 1, 0x20), status: 413, code: 'MANIFEST_INVALID' },
  { name: '100 000 descriptors', body: index(Array.from({ length: 100_000 }, (_, i) => descriptor(i))), status: 413, code: 'MANIFEST_INVALID' },
  { name: '6 000 descriptors, under 4 MiB but over maxDescriptors', body: index(Array.from({ length: 6_000 }, (_, i) => descriptor(i))), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'nesting 1000 deep', body: deepJson, status: 400, code: 'MANIFEST_INVALID' },
  { name: 'descriptor digest: unknown algorithm', body: index([{ ...descriptor(1), digest: `md5:${'a'.repeat(32)}` }]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'descriptor digest: wrong length', body: index([{ ...descriptor(1), digest: 'sha256:abcd' }]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'descriptor digest: upper case', body: index([{ ...descriptor(1), digest: D.toUpperCase().replace('SHA256', 'sha256') }]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'URL digest: unknown algorithm', path: `/v2/team/app/manifests/md5:${'a'.repeat(32)}`, body: index([]), status: 400, code: 'DIGEST_INVALID' },
  { name: 'URL digest: upper case', path: `/v2/team/app/manifests/sha256:${'A'.repeat(64)}`, body: index([]), status: 400, code: 'DIGEST_INVALID' },
  { name: 'URL digest does not match the body', path: `/v2/team/app/manifests/${D}`, body: index([]), status: 400, code: 'DIGEST_INVALID' },
  { name: 'URL tag too long', path: `/v2/team/app/manifests/${'t'.repeat(200)}`, body: index([]), status: 400, code: 'TAG_INVALID' },
  { name: 'repository name with upper case', path: '/v2/Team/App/manifests/1', body: index([]), status: 400, code: 'NAME_INVALID' },
  { name: 'repository name over 255 characters', path: `/v2/${'a'.repeat(300)}/manifests/1`, body: index([]), status: 400, code: 'NAME_INVALID' },
  { name: 'empty path segment (//)', path: '/v2/team//app/manifests/1', body: index([]), status: 400, code: 'NAME_INVALID' },
  { name: 'dot-dot segment', method: 'GET', path: '/v2/team/../secret/manifests/1', status: 400, code: 'NAME_INVALID' },
  { name: 'encoded dot-dot', method: 'GET', path: '/v2/team/%2e%2e/secret/manifests/1', status: 400, code: 'NAME_INVALID' },
  { name: 'encoded slash in a write', path: '/v2/team%2fsecret/manifests/1', body: index([]), status: 400, code: 'NAME_INVALID' },
  { name: 'backslash', method: 'GET', path: '/v2/team/..\\secret/manifests/1', status: 400, code: 'NAME_INVALID' },
  { name: 'broken percent-encoding', method: 'GET', path: '/v2/team/app/manifests/%zz', status: 400, code: 'NAME_INVALID' },
]

t.test('the bad-input corpus', async (t) => {
  const fake = await startFakeRegistry((req, res) => json(res, req.method === 'PUT' ? 201 : 404, {}))
  t.teardown(() => fake.close())
  const proxy = await proxyFor(t, fake.url)
  const heapBefore = heapAfterGc()

  for (const e of CORPUS) {
    const started = performance.now()
    const headers = e.headers ?? { 'content-type': MT.ociIndex }
    const res = await rawRequest(proxy.url, e.method ?? 'PUT', e.path ?? '/v2/team/app/manifests/bad', headers, e.body)
    const elapsed = performance.now() - started
    let body: { errors?: { code: string; message: string }[] } = {}
    try {
      body = JSON.parse(res.body.toString()) as typeof body
    } catch {
      t.fail(`${e.name}: the answer is not JSON: ${res.body.toString().slice(0, 80)}`)
    }
    t.equal(res.status, e.status, `${e.name}: ${e.status}`)
    t.equal(body.errors?.[0]?.code, e.code, `${e.name}: ${e.code} (${body.errors?.[0]?.message})`)
    t.match(String(res.headers['content-type']), /^application\/json/, `${e.name}: application/json`)
    // A bound for a hang, not a speed target: a loaded 2-core machine takes seconds at times.
    t.ok(elapsed < 15_000, `${e.name}: answered in ${elapsed.toFixed(0)} ms`)
  }
  t.same(fake.requests, [], 'none of it reached the registry, not even as a lookup')

  t.test('headers over 16 KiB get a 431 OCI error', async (t) => {
    const res = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(proxy.url).port), '127.0.0.1', () => {
        socket.write(`GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(40_000)}\r\n\r\n`)
      })
      let text = ''
      socket.on('data', (d) => (text += d.toString()))
      socket.on('close', () => resolve(text))
      socket.on('error', () => resolve(text))
    })
    t.match(res, /^HTTP\/1\.1 431 /)
    t.match(res, /"code":"UNSUPPORTED","message":"manifest-guard: request headers larger than 16 KiB"/)
  })

  const heapAfter = heapAfterGc()
  t.ok(heapAfter - heapBefore < 64 << 20, `heap grew ${((heapAfter - heapBefore) / 2 ** 20).toFixed(0)} MiB over the corpus`)
  const health = await rawRequest(proxy.url, 'GET', '/healthz')
  t.equal(health.status, 200, 'the process keeps serving')
})
