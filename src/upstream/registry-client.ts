import { Transform } from 'node:stream'
import { LRUCache } from 'lru-cache'
import { Pool, request as undiciRequest, type Dispatcher } from 'undici'
import type { BlobContent, ContentLookup, LookupContext, ManifestContent } from '../oci/content-lookup.js'
import { type Digest, digestOf, isDigest } from '../oci/digest.js'
import { type Manifest, parseManifest } from '../oci/manifest.js'
import { MANIFEST_ACCEPT, mediaTypeOf } from '../oci/media-type.js'
import { readBounded } from './bounded-body.js'
import { TokenAuthorizer } from './token-auth.js'

// The proxy's own requests to the registry: manifest and blob lookups for the walk, tag
// resolution for the diagnosis, and the readiness ping. Every body is read to a bound or
// dumped, and HEAD keeps the connection alive (undici closes it after HEAD by default).

/** Largest manifest a registry accepts (distribution's maxManifestBodySize). */
export const MAX_MANIFEST_BYTES = 4 << 20

export type LookupKind = 'manifest' | 'blob' | 'tag' | 'catalog' | 'ping' | 'upload'

export interface RegistryClientOptions {
  readonly origin: string
  readonly connections: number
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
  /** CA certificates a TLS registry's certificate may chain to (default: the system's). */
  readonly ca?: readonly string[] | undefined
  /** Called once per upstream request, for metrics. */
  readonly onRequest?: (kind: LookupKind, status: number | 'error') => void
}

export interface TagResolution {
  readonly digest: Digest
  readonly mediaType: string | undefined
  /** The manifest's size, from Content-Length, when the registry sent one. */
  readonly size?: number
}

export class RegistryClient {
  readonly #pool: Pool
  readonly #onRequest: RegistryClientOptions['onRequest']
  readonly #authorizer: TokenAuthorizer
  // Answers to challenges, per repository and credentials, so a check asks the realm once.
  readonly #authorized = new LRUCache<string, string>({ max: 1000, ttl: 50_000 })

  constructor(options: RegistryClientOptions) {
    this.#pool = new Pool(options.origin, {
      connections: options.connections,
      pipelining: 1,
      connect: { timeout: options.connectTimeoutMs, ...(options.ca === undefined ? {} : { ca: [...options.ca] }) },
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
    })
    this.#onRequest = options.onRequest
    this.#authorizer = new TokenAuthorizer(options.ca)
  }

  /** GET a manifest by digest; the body must hash to that digest. */
  async manifest(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<ManifestContent>> {
    const res = await this.#request('manifest', 'GET', `/v2/${repository}/manifests/${digest}`, ctx, { accept: MANIFEST_ACCEPT })
    if (!('statusCode' in res)) return res
    if (res.statusCode !== 200) return this.#unhappy(res)
    const body = await readBounded(res.body, MAX_MANIFEST_BYTES)
    if (body === undefined) return { status: 'failed', reason: `the registry sent a manifest over ${MAX_MANIFEST_BYTES} bytes` }
    if (digestOf(body, digest.slice(0, digest.indexOf(':'))) !== digest) {
      return { status: 'failed', reason: `the registry answered ${digest} with content of another digest` }
    }
    const mediaType = mediaTypeOf(header(res.headers, 'content-type')) ?? ''
    const parsed = parseManifest(body, mediaType)
    const value: ManifestContent =
      'problem' in parsed
        ? { digest, mediaType, size: body.length, manifest: undefined, problem: parsed.problem }
        : { digest, mediaType: parsed.mediaType, size: body.length, manifest: parsed }
    return { status: 'found', value }
  }

  /** HEAD a blob: exists, and its size. */
  async blob(repository: string, digest: Digest, ctx: LookupContext): Promise<ContentLookup<BlobContent>> {
    const res = await this.#request('blob', 'HEAD', `/v2/${repository}/blobs/${digest}`, ctx, {})
    if (!('statusCode' in res)) return res
    await res.body.dump()
    // A redirect to blob storage (storage.redirect) also means the registry holds the blob.
    if (res.statusCode === 200 || res.statusCode === 307 || res.statusCode === 302) {
      const length = Number(header(res.headers, 'content-length'))
      return { status: 'found', value: { size: res.statusCode === 200 && Number.isSafeInteger(length) ? length : undefined } }
    }
    return this.#unhappy(res)
  }

  /** GET a small blob (an image config) to read it. */
  async blobBytes(repository: string, digest: Digest, ctx: LookupContext, maxBytes: number): Promise<ContentLookup<Buffer>> {
    const res = await this.#getBlob(repository, digest, ctx)
    if (!('statusCode' in res)) return res
    const body = await readBounded(res.body, maxBytes)
    if (body === undefined) return { status: 'failed', reason: `blob larger than ${maxBytes} bytes` }
    return { status: 'found', value: body }
  }

  /** GET a blob, following a redirect to blob storage; a 200 with its body unread, or why not. */
  async #getBlob(repository: string, digest: Digest, ctx: LookupContext): Promise<Dispatcher.ResponseData | ContentLookup<never>> {
    let res = await this.#request('blob', 'GET', `/v2/${repository}/blobs/${digest}`, ctx, {})
    if (!('statusCode' in res)) return res
    const location = header(res.headers, 'location')
    if ((res.statusCode === 307 || res.statusCode === 302) && location !== undefined) {
      // Blob storage behind a redirect (S3, GCS) signs its own URL: follow once, and never
      // send the client's credentials to another host.
      await res.body.dump()
      try {
        res = await undiciRequest(location, { method: 'GET', signal: ctx.signal ?? null, headersTimeout: 30_000, bodyTimeout: 30_000 })
      } catch (err) {
        return { status: 'failed', reason: describeFailure(err) }
      }
    }
    return res.statusCode === 200 ? res : this.#unhappy(res)
  }

  /** HEAD a tag (or digest): the digest it points at now. Never cached: tags move. */
  async resolveTag(repository: string, reference: string, ctx: LookupContext): Promise<ContentLookup<TagResolution>> {
    const res = await this.#request('tag', 'HEAD', `/v2/${repository}/manifests/${reference}`, ctx, { accept: MANIFEST_ACCEPT })
    if (!('statusCode' in res)) return res
    await res.body.dump()
    if (res.statusCode !== 200) return this.#unhappy(res)
    const digest = header(res.headers, 'docker-content-digest')
    if (!isDigest(digest)) return { status: 'failed', reason: 'the registry did not send Docker-Content-Digest for a tag' }
    const length = Number(header(res.headers, 'content-length'))
    const mediaType = mediaTypeOf(header(res.headers, 'content-type'))
    return { status: 'found', value: Number.isSafeInteger(length) && length >= 0 ? { digest, mediaType, size: length } : { digest, mediaType } }
  }

  /**
   * Whether the client's credentials read `repository` (GET its tag list). Asked before a
   * rejection that rests on cached facts alone, so the proxy never tells anyone about a
   * repository the registry would not show them.
   */
  async canRead(repository: string, ctx: LookupContext): Promise<'yes' | 'no' | 'unknown'> {
    const res = await this.#request('tag', 'GET', `/v2/${repository}/tags/list?n=1`, ctx, {})
    if (!('statusCode' in res)) return 'unknown'
    await res.body.dump()
    if (res.statusCode === 401 || res.statusCode === 403) return 'no'
    return res.statusCode === 200 || res.statusCode === 404 ? 'yes' : 'unknown'
  }

  /**
   * DELETE an upload session the registry opened for a mount it could not do. Best effort:
   * the registry expires abandoned sessions anyway (distribution's upload purging).
   */
  async cancelUpload(location: string | undefined, authorization: string | undefined): Promise<void> {
    if (location === undefined) return
    let path: string
    try {
      const url = new URL(location, 'http://placeholder')
      path = url.pathname + url.search
    } catch {
      return
    }
    if (!path.startsWith('/v2/')) return
    const res = await this.#request('upload', 'DELETE', path, { authorization }, {})
    if ('statusCode' in res) await res.body.dump()
  }

  /**
   * POST ?mount=<digest>&from=<repo> into `repository`: mounted (201), or the upload session
   * the registry opened instead (202), for the repair to stream the blob into.
   */
  async mountBlob(repository: string, digest: Digest, from: string, ctx: LookupContext): Promise<ContentLookup<{ readonly mounted: true } | { readonly upload: string }>> {
    const res = await this.#request('upload', 'POST', `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, ctx, {})
    if (!('statusCode' in res)) return res
    await res.body.dump()
    if (res.statusCode === 201) return { status: 'found', value: { mounted: true } }
    const location = header(res.headers, 'location')
    if (res.statusCode === 202 && location !== undefined) return { status: 'found', value: { upload: location } }
    return this.#unhappy(res)
  }

  /**
   * Streams blob `digest` of `from` into the upload session at `upload` (a Location the
   * registry gave): GET and PUT ?digest= run as one pipe, so memory stays flat at any size.
   */
  async streamBlob(from: string, digest: Digest, upload: string, ctx: LookupContext): Promise<ContentLookup<number>> {
    const res = await this.#getBlob(from, digest, ctx)
    if (!('statusCode' in res)) return res
    const length = Number(header(res.headers, 'content-length'))
    const target = uploadPath(upload, digest)
    if (target === undefined) {
      await res.body.dump()
      return { status: 'failed', reason: `the registry gave an upload location manifest-guard cannot use (${upload})` }
    }
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...(Number.isSafeInteger(length) ? { 'content-length': String(length) } : {}) }
    if (ctx.authorization !== undefined) headers['authorization'] = ctx.authorization
    if (ctx.stats !== undefined) ctx.stats.upstreamRequests++
    // Counted on the way through: a 'data' listener on the body itself would start it flowing
    // before the upload reads it, and drop bytes.
    let bytes = 0
    const counted = res.body.pipe(
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          bytes += chunk.length
          done(null, chunk)
        },
      }),
    )
    try {
      const put = await this.#pool.request({ method: 'PUT', path: target, headers, body: counted, signal: ctx.signal ?? null })
      this.#onRequest?.('upload', put.statusCode)
      if (put.statusCode !== 201) return this.#unhappy(put)
      await put.body.dump()
      return { status: 'found', value: bytes }
    } catch (err) {
      res.body.destroy()
      counted.destroy()
      this.#onRequest?.('upload', 'error')
      return { status: 'failed', reason: describeFailure(err) }
    }
  }

  /** PUT a manifest by its digest, with its exact bytes and media type. */
  async putManifest(repository: string, manifest: Manifest, ctx: LookupContext): Promise<ContentLookup<true>> {
    const headers: Record<string, string> = { 'content-type': manifest.mediaType }
    if (ctx.authorization !== undefined) headers['authorization'] = ctx.authorization
    if (ctx.stats !== undefined) ctx.stats.upstreamRequests++
    try {
      const res = await this.#pool.request({ method: 'PUT', path: `/v2/${repository}/manifests/${manifest.digest}`, headers, body: manifest.raw, signal: ctx.signal ?? null })
      this.#onRequest?.('upload', res.statusCode)
      if (res.statusCode !== 201) return this.#unhappy(res)
      await res.body.dump()
      return { status: 'found', value: true }
    } catch (err) {
      this.#onRequest?.('upload', 'error')
      return { status: 'failed', reason: describeFailure(err) }
    }
  }

  /** Every tag of a repository, following `Link` pagination, at most `max`. */
  async listTags(repository: string, ctx: LookupContext, max = 100_000): Promise<ContentLookup<string[]>> {
    return this.#listPages(`/v2/${repository}/tags/list?n=1000`, 'tags', 'tag', ctx, max)
  }

  /** GET /v2/_catalog, every page (Link: rel="next"): the repositories the credentials may list. */
  async listRepositories(ctx: LookupContext, max = 1_000_000): Promise<ContentLookup<string[]>> {
    return this.#listPages('/v2/_catalog?n=1000', 'repositories', 'catalog', ctx, max)
  }

  async #listPages(first: string, field: 'tags' | 'repositories', kind: LookupKind, ctx: LookupContext, max: number): Promise<ContentLookup<string[]>> {
    const tags: string[] = []
    let path: string | undefined = first
    while (path !== undefined && tags.length < max) {
      const res = await this.#request(kind, 'GET', path, ctx, {})
      if (!('statusCode' in res)) return res
      if (res.statusCode !== 200) return this.#unhappy(res)
      const body = await readBounded(res.body, MAX_MANIFEST_BYTES)
      let page: Record<string, unknown>
      try {
        page = JSON.parse(body?.toString('utf8') ?? '{}') as Record<string, unknown>
      } catch {
        return { status: 'failed', reason: `the registry sent a ${field === 'tags' ? 'tag list' : 'catalog'} that is not JSON` }
      }
      const items = page[field]
      if (Array.isArray(items)) tags.push(...items.filter((t): t is string => typeof t === 'string'))
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res.headers, 'link') ?? '')?.[1]
      path = next === undefined ? undefined : new URL(next, 'http://placeholder').pathname + new URL(next, 'http://placeholder').search
    }
    return { status: 'found', value: tags.slice(0, max) }
  }

  /** GET /v2/: the registry answers (200, or 401 when it wants credentials). */
  async ping(signal: AbortSignal): Promise<{ ok: boolean; detail: string }> {
    const res = await this.#request('ping', 'GET', '/v2/', { authorization: undefined, signal }, {})
    if (!('statusCode' in res)) return { ok: false, detail: res.reason }
    await res.body.dump()
    return { ok: res.statusCode === 200 || res.statusCode === 401, detail: `GET /v2/ answered ${res.statusCode}` }
  }

  async close(): Promise<void> {
    await this.#pool.close()
  }

  async #request(
    kind: LookupKind,
    method: 'GET' | 'HEAD' | 'DELETE' | 'POST',
    path: string,
    ctx: LookupContext,
    headers: Record<string, string>,
  ): Promise<Dispatcher.ResponseData | { status: 'failed'; reason: string }> {
    const authorization = ctx.authorization ?? this.#authorized.get(scopeKey(path, ctx))
    if (authorization !== undefined) headers['authorization'] = authorization
    if (ctx.stats !== undefined) ctx.stats.upstreamRequests++
    try {
      let res = await this.#send(method, path, headers, ctx)
      this.#onRequest?.(kind, res.statusCode)
      if (res.statusCode === 401 && ctx.credentials !== undefined && ctx.authorization === undefined) {
        // Acting on its own behalf (check): answer the challenge once, then retry.
        const answer = await this.#authorizer.authorize(header(res.headers, 'www-authenticate'), ctx.credentials, ctx.signal)
        await res.body.dump()
        if ('failed' in answer) return { status: 'failed', reason: answer.failed }
        if ('value' in answer) {
          this.#authorized.set(scopeKey(path, ctx), answer.value)
          res = await this.#send(method, path, { ...headers, authorization: answer.value }, ctx)
          this.#onRequest?.(kind, res.statusCode)
        } else {
          res = await this.#send(method, path, headers, ctx)
        }
      }
      if (ctx.stats !== undefined && res.statusCode < 500 && res.statusCode !== 401 && res.statusCode !== 403 && res.statusCode !== 429) {
        ctx.stats.authorizedAnswers++
      }
      return res
    } catch (err) {
      this.#onRequest?.(kind, 'error')
      return { status: 'failed', reason: describeFailure(err) }
    }
  }

  #send(method: string, path: string, headers: Record<string, string>, ctx: LookupContext): Promise<Dispatcher.ResponseData> {
    return this.#pool.request({
      method: method as Dispatcher.HttpMethod,
      path,
      headers,
      signal: ctx.signal ?? null,
      // undici closes the socket after every HEAD unless told otherwise; distribution
      // sends no body with HEAD, so the connection is safe to reuse.
      reset: false,
    })
  }

  async #unhappy(res: Dispatcher.ResponseData): Promise<ContentLookup<never>> {
    await res.body.dump()
    if (res.statusCode === 404) return { status: 'missing' }
    if (res.statusCode === 401 || res.statusCode === 403) return { status: 'denied', httpStatus: res.statusCode }
    return { status: 'failed', reason: `the registry answered ${res.statusCode}`, httpStatus: res.statusCode }
  }
}

/** The path of an upload Location, with ?digest= added to close it. */
function uploadPath(location: string, digest: Digest): string | undefined {
  try {
    const url = new URL(location, 'http://placeholder')
    if (!url.pathname.startsWith('/v2/')) return undefined
    url.searchParams.set('digest', digest)
    return url.pathname + url.search
  } catch {
    return undefined
  }
}

function scopeKey(path: string, ctx: LookupContext): string {
  const repository = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(path)?.[1] ?? ''
  return ctx.credentials === undefined ? '' : `${ctx.credentials.username ?? ''}@${repository}`
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

function describeFailure(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string }
  if (e.name === 'AbortError' || e.name === 'TimeoutError' || e.code === 'UND_ERR_ABORTED') return 'the lookup was cut off by the validation time limit'
  if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') return 'the registry did not answer in time'
  if (e.code === 'UND_ERR_CONNECT_TIMEOUT') return 'connecting to the registry timed out'
  if (e.code === 'ECONNREFUSED') return 'the registry refused the connection'
  return `the registry could not be reached (${e.code ?? e.message ?? 'unknown error'})`
}
