import t from 'tap'
import { buildImage, buildIndex, MT, pseudoRandom, sha256 } from '../helpers/oci-builder.js'
import { rawRequest, type RawResponse } from '../helpers/raw-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The proxy must not change what a conformant client sees. The OCI distribution-spec
// workflows (push, pull, content discovery, content management), request by request as the
// spec writes them, against the registry directly and through the proxy: the same status
// codes and the same headers that matter, with only the host, the repository and the
// registry's random upload ids told apart.

const MATTERS = ['content-type', 'content-length', 'docker-content-digest', 'content-range', 'range', 'location', 'link', 'www-authenticate', 'accept-ranges', 'oci-subject', 'docker-distribution-api-version']

interface Step {
  readonly name: string
  readonly method: string
  /** The path and query, `{repo}` replaced by the repository; may use values of earlier steps. */
  readonly path: (ctx: Ctx) => string
  readonly headers?: Record<string, string>
  readonly body?: Buffer
  /** Keeps something from the answer for later steps (an upload Location). */
  readonly keep?: (res: RawResponse, ctx: Ctx) => void
}

interface Ctx {
  repo: string
  host: string
  location: string
}

const image = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'conformance', layerCount: 2 })
const index = buildIndex([image])
const chunk = pseudoRandom('conformance-chunks', 3000)
const chunkDigest = sha256(chunk)
const missing = `sha256:${'9'.repeat(64)}`
const keepLocation = (res: RawResponse, ctx: Ctx): void => {
  const loc = String(res.headers['location'] ?? '')
  ctx.location = loc.startsWith('http') ? new URL(loc).pathname + new URL(loc).search : loc
}
const withDigest = (ctx: Ctx, digest: string): string => `${ctx.location}${ctx.location.includes('?') ? '&' : '?'}digest=${digest}`
const ACCEPT = { accept: [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ') }

const STEPS: Step[] = [
  // end-1: the API base.
  { name: 'GET /v2/', method: 'GET', path: () => '/v2/' },
  // Push, monolithic: POST then PUT with the whole blob (end-4a, end-6).
  ...[image.config, ...image.layers].flatMap((b, i): Step[] => [
    { name: `blob ${i}: POST upload`, method: 'POST', path: (c) => `/v2/${c.repo}/blobs/uploads/`, keep: keepLocation },
    { name: `blob ${i}: PUT monolithic`, method: 'PUT', path: (c) => withDigest(c, b.digest), headers: { 'content-type': 'application/octet-stream' }, body: b.bytes },
  ]),
  // Push, chunked: POST, PATCH, status, PATCH, PUT (end-4a, end-5, end-13, end-6). (distribution
  // 2.8 does not answer out-of-order chunks with 416, so that step would compare nothing.)
  { name: 'chunked: POST upload', method: 'POST', path: (c) => `/v2/${c.repo}/blobs/uploads/`, keep: keepLocation },
  { name: 'chunked: PATCH first chunk', method: 'PATCH', path: (c) => c.location, headers: { 'content-type': 'application/octet-stream', 'content-range': '0-999' }, body: chunk.subarray(0, 1000), keep: keepLocation },
  { name: 'chunked: GET upload status', method: 'GET', path: (c) => c.location },
  { name: 'chunked: PATCH second chunk', method: 'PATCH', path: (c) => c.location, headers: { 'content-type': 'application/octet-stream', 'content-range': '1000-2999' }, body: chunk.subarray(1000), keep: keepLocation },
  { name: 'chunked: PUT close', method: 'PUT', path: (c) => withDigest(c, chunkDigest), headers: { 'content-length': '0' } },
  { name: 'PUT with a wrong digest', method: 'POST', path: (c) => `/v2/${c.repo}/blobs/uploads/`, keep: keepLocation },
  { name: 'PUT with a wrong digest: close', method: 'PUT', path: (c) => withDigest(c, missing), headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from('not that') },
  // Cross-repository mount (end-11), and a mount of something the source does not have.
  { name: 'mount from the other repository', method: 'POST', path: (c) => `/v2/${c.repo}-mounted/blobs/uploads/?mount=${image.config.digest}&from=${c.repo}` },
  { name: 'mount of a missing blob', method: 'POST', path: (c) => `/v2/${c.repo}-mounted/blobs/uploads/?mount=${missing}&from=${c.repo}`, keep: keepLocation },
  { name: 'cancel that upload', method: 'DELETE', path: (c) => c.location },
  // Manifests (end-7), an index, and one that names a blob the repository lacks.
  { name: 'PUT image manifest by tag', method: 'PUT', path: (c) => `/v2/${c.repo}/manifests/v1`, headers: { 'content-type': image.manifest.mediaType }, body: image.manifest.bytes },
  { name: 'PUT image manifest by digest', method: 'PUT', path: (c) => `/v2/${c.repo}/manifests/${image.manifest.digest}`, headers: { 'content-type': image.manifest.mediaType }, body: image.manifest.bytes },
  { name: 'PUT index by tag', method: 'PUT', path: (c) => `/v2/${c.repo}/manifests/list`, headers: { 'content-type': index.manifest.mediaType }, body: index.manifest.bytes },
  {
    name: 'PUT manifest naming a missing blob',
    method: 'PUT',
    path: (c) => `/v2/${c.repo}/manifests/broken`,
    headers: { 'content-type': MT.ociManifest },
    body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: missing, size: 2 }, layers: [] })),
  },
  // Pull (end-2, end-3, end-10).
  { name: 'HEAD manifest by tag', method: 'HEAD', path: (c) => `/v2/${c.repo}/manifests/v1`, headers: ACCEPT },
  { name: 'GET manifest by tag', method: 'GET', path: (c) => `/v2/${c.repo}/manifests/v1`, headers: ACCEPT },
  { name: 'GET manifest by digest', method: 'GET', path: (c) => `/v2/${c.repo}/manifests/${image.manifest.digest}`, headers: ACCEPT },
  { name: 'GET index by tag', method: 'GET', path: (c) => `/v2/${c.repo}/manifests/list`, headers: ACCEPT },
  { name: 'GET manifest without Accept', method: 'GET', path: (c) => `/v2/${c.repo}/manifests/v1` },
  { name: 'GET unknown tag', method: 'GET', path: (c) => `/v2/${c.repo}/manifests/nope`, headers: ACCEPT },
  { name: 'GET manifest of an unknown repository', method: 'GET', path: () => '/v2/conformance/none/manifests/v1', headers: ACCEPT },
  { name: 'HEAD blob', method: 'HEAD', path: (c) => `/v2/${c.repo}/blobs/${image.layers[0]!.digest}` },
  { name: 'GET blob', method: 'GET', path: (c) => `/v2/${c.repo}/blobs/${image.layers[0]!.digest}` },
  { name: 'GET blob range', method: 'GET', path: (c) => `/v2/${c.repo}/blobs/${chunkDigest}`, headers: { range: 'bytes=10-99' } },
  { name: 'GET unknown blob', method: 'GET', path: (c) => `/v2/${c.repo}/blobs/${missing}` },
  // Content discovery (end-8a, end-8b, end-12).
  { name: 'tags list', method: 'GET', path: (c) => `/v2/${c.repo}/tags/list` },
  { name: 'tags list n=1', method: 'GET', path: (c) => `/v2/${c.repo}/tags/list?n=1` },
  { name: 'tags list n=1 last=list', method: 'GET', path: (c) => `/v2/${c.repo}/tags/list?n=1&last=list` },
  { name: 'referrers', method: 'GET', path: (c) => `/v2/${c.repo}/referrers/${image.manifest.digest}` },
  // Content management (end-9, end-10).
  { name: 'DELETE manifest by tag', method: 'DELETE', path: (c) => `/v2/${c.repo}/manifests/list` },
  { name: 'DELETE index by digest', method: 'DELETE', path: (c) => `/v2/${c.repo}/manifests/${index.manifest.digest}` },
  { name: 'DELETE manifest by digest', method: 'DELETE', path: (c) => `/v2/${c.repo}/manifests/${image.manifest.digest}` },
  { name: 'GET deleted manifest', method: 'GET', path: (c) => `/v2/${c.repo}/manifests/${image.manifest.digest}`, headers: ACCEPT },
  { name: 'DELETE blob', method: 'DELETE', path: (c) => `/v2/${c.repo}/blobs/${chunkDigest}` },
  { name: 'HEAD deleted blob', method: 'HEAD', path: (c) => `/v2/${c.repo}/blobs/${chunkDigest}` },
  { name: 'DELETE unknown blob', method: 'DELETE', path: (c) => `/v2/${c.repo}/blobs/${missing}` },
]

function normalise(res: RawResponse, ctx: Ctx): Record<string, string> {
  const out: Record<string, string> = { status: String(res.status) }
  for (const name of MATTERS) {
    const v = res.headers[name]
    if (v === undefined) continue
    let s = Array.isArray(v) ? v.join(', ') : String(v)
    s = s.replaceAll(`http://${ctx.host}`, 'http://HOST').replaceAll(ctx.repo, 'REPO')
    s = s.replace(/uploads\/[0-9a-f-]{36}/g, 'uploads/UUID').replace(/_state=[^&>\s"]+/g, '_state=STATE')
    out[name] = s
  }
  // Errors carry their codes in the body; a client acts on those too.
  if (res.status >= 400 && res.body.length > 0) {
    try {
      out['error-codes'] = ((JSON.parse(res.body.toString()) as { errors?: { code: string }[] }).errors ?? []).map((e) => e.code).join(',')
    } catch {
      out['error-codes'] = 'not json'
    }
  }
  if (res.status < 300 && res.body.length > 0) out['body-digest'] = sha256(Buffer.from(res.body.toString('latin1').replaceAll(ctx.repo, 'REPO'), 'latin1'))
  return out
}

t.test('the registry answers the same, directly and through the proxy', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  // Names of one length, so bodies that contain them differ in nothing else.
  const direct: Ctx = { repo: 'conformance/aaaaaa', host: registry.host, location: '' }
  const proxied: Ctx = { repo: 'conformance/bbbbbb', host: proxy.host, location: '' }
  for (const step of STEPS) {
    const answers = []
    for (const [base, ctx] of [[registry.url, direct], [proxy.url, proxied]] as const) {
      const res = await rawRequest(base, step.method, step.path(ctx), step.headers ?? {}, step.body)
      step.keep?.(res, ctx)
      answers.push(normalise(res, ctx))
    }
    t.same(answers[1], answers[0], `${step.name}: ${answers[0]?.['status']}`)
  }
})
