import type { IncomingHttpHeaders } from 'node:http'
import { LRUCache } from 'lru-cache'
import type { PushRecord } from '../ledger/push-record.js'
import { type Digest, isDigest } from '../oci/digest.js'
import { parseManifest } from '../oci/manifest.js'
import { mediaTypeOf } from '../oci/media-type.js'
import { identityLabel, identityOf } from './identity.js'
import type { Exchange } from './exchange.js'
import type { Services } from './services.js'

// Learns from the traffic that passes: every manifest push goes into the ledger, and every
// answer that proves a repository holds a digest goes into the existence cache. The
// forwarder calls it with each registry answer before passing it on, so the client cannot
// act on an answer before the proxy has learned from it; it never changes the answer.

/** Open upload sessions remembered, for the size of chunked uploads. */
const MAX_UPLOAD_SESSIONS = 10_000
const UPLOAD_SESSION_TTL_MS = 24 * 3600 * 1000

/** Sees every registry answer the proxy passes on, before the client does. */
export type ResponseObserver = (request: Exchange, status: number, headers: IncomingHttpHeaders) => void

export function createResponseObserver(services: Services): ResponseObserver {
  // Bytes received so far per upload session, from the Range of each PATCH answer.
  const uploads = new LRUCache<string, number>({ max: MAX_UPLOAD_SESSIONS, ttl: UPLOAD_SESSION_TTL_MS })
  return (request, status, headers) => {
    try {
      observe(request, status, headers, services, uploads)
    } catch (err) {
      request.log.warn({ err }, 'traffic observer failed; the reply is unaffected')
    }
  }
}

function observe(request: Exchange, status: number, headers: IncomingHttpHeaders, services: Services, uploads: LRUCache<string, number>): void {
  const path = request.registryPath
  if (path === null) return
  // Only answers that prove content exists (or is gone) teach anything.
  if (status !== 200 && status !== 201 && status !== 202) return
  const { cache } = services
  const method = request.method
  switch (path.kind) {
    case 'manifest': {
      const digest = headerDigest(headers)
      if (method === 'PUT' && status === 201 && digest !== undefined) {
        recordManifestPush(request, services, path.name, path.reference.kind === 'tag' ? path.reference.tag : undefined, digest)
      } else if ((method === 'GET' || method === 'HEAD') && status === 200 && path.reference.kind === 'digest') {
        cache.rememberManifest(path.name, path.reference.digest, mediaTypeOf(header(headers, 'content-type')), contentLength(headers))
      } else if (method === 'DELETE' && status === 202 && path.reference.kind === 'digest') {
        cache.forget(path.name, path.reference.digest)
      }
      return
    }
    case 'blob':
      if ((method === 'GET' || method === 'HEAD') && status === 200) cache.rememberBlob(path.name, path.digest, contentLength(headers))
      else if (method === 'DELETE' && status === 202) cache.forget(path.name, path.digest)
      return
    case 'upload':
      observeUpload(request, status, headers, services, uploads, path.name, path.session)
      return
    default:
      return
  }
}

function observeUpload(
  request: Exchange,
  status: number,
  headers: IncomingHttpHeaders,
  services: Services,
  uploads: LRUCache<string, number>,
  repository: string,
  session: string | undefined,
): void {
  const query = request.query as Record<string, string | undefined>
  if (status === 202 && session !== undefined) {
    // distribution reports the bytes held so far as `Range: 0-<last>`.
    const range = /^0-(\d+)$/.exec(header(headers, 'range') ?? '')
    if (range !== null) uploads.set(session, Number(range[1]) + 1)
    return
  }
  if (status === 202 && request.method === 'POST' && query['mount'] !== undefined) {
    request.log.info(
      { event: 'mount.refused', repository, from: query['from'], digest: query['mount'] },
      'cross-repository mount refused: the source repository does not hold that blob (deleted, or never there); the client uploads it instead or, like docker, gives up',
    )
    return
  }
  if (status !== 201) return
  const digest = headerDigest(headers)
  if (digest === undefined) return
  let size: number | undefined
  if (request.method === 'POST' && query['mount'] !== undefined && query['from'] !== undefined) {
    size = services.cache.get(query['from'], digest)?.size
  } else {
    const sent = Number(request.headers['content-length'] ?? '0')
    const before = session === undefined ? 0 : uploads.get(session) ?? 0
    // A final PUT streamed without Content-Length leaves the size unknown (the walk HEADs it).
    size = Number.isSafeInteger(sent) && (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] === undefined) ? before + sent : undefined
    if (session !== undefined) uploads.delete(session)
  }
  services.cache.rememberBlob(repository, digest, size)
}

function recordManifestPush(request: Exchange, services: Services, repository: string, tag: string | undefined, digest: Digest): void {
  const pushed = request.pushedManifest
  const raw = pushed?.copy()
  const parsed = pushed?.parsed ?? (raw === undefined ? undefined : parsedOrUndefined(raw, mediaTypeOf(request.headers['content-type'])))
  const mediaType = parsed?.mediaType ?? mediaTypeOf(request.headers['content-type'])
  services.cache.rememberManifest(repository, digest, mediaType, raw?.length, parsed)
  const record: PushRecord = {
    repository,
    tag,
    digest,
    mediaType,
    at: Date.now(),
    identity: identityLabel(identityOf(request.headers.authorization)),
    source: 'proxy',
  }
  services.ledger.record(record).catch((err: unknown) => request.log.warn({ err, repository, digest }, 'ledger write failed; the push went through'))
}

function parsedOrUndefined(raw: Buffer, contentType: string | undefined) {
  const parsed = parseManifest(raw, contentType)
  return 'problem' in parsed ? undefined : parsed
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

function headerDigest(headers: IncomingHttpHeaders): Digest | undefined {
  const d = header(headers, 'docker-content-digest')
  return isDigest(d) ? d : undefined
}

function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const n = Number(header(headers, 'content-length'))
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}
